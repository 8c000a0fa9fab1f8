/** Where a command writes: its output, and its messages and errors. */
export interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** The command as the user typed it (`keel`, `npx keel`), for hints; `keel` when not given. */
  readonly prog?: string;
}
