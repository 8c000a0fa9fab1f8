import {
  closeSync,
  existsSync,
  fdatasyncSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';

/**
 * The live path's write-ahead log of new orders, one append-only file per bot next to a SQLite
 * database file (`<db>-intents/<bot>.jsonl`).
 *
 * An order must be durable before its request leaves. Appending one line to an open file is one
 * `write` system call; a SQLite commit is several (locks, the WAL, its index) and, on the live
 * path, run cold (the CPU idles between bars), cost about twice as much (the live bench's
 * write-ahead line, docs/live.md#latency). So the order is appended here first, its database row is written by the
 * bot's journal right after (in order with the order's later changes), and a bot that restarts
 * replays the lines whose row never arrived (a crash between the two) before it reconciles.
 *
 * Durability is the database's own: with `synchronous=FULL` each append is followed by
 * `fdatasync` (as each SQLite commit is), with `NORMAL` it survives a process crash but not
 * necessarily a power loss. The file is emptied whenever every line in it has its row.
 */
export class IntentLog {
  private readonly fd: number;
  /** Lines appended whose row has not been written yet. */
  private unsaved = 0;
  private bytes = 0;
  private closed = false;

  constructor(
    readonly file: string,
    private readonly sync: boolean,
  ) {
    const existed = existsSync(file);
    mkdirSync(path.dirname(file), { recursive: true });
    this.fd = openSync(file, 'a');
    // A new file's name must be durable too before its first line counts as written.
    if (sync && !existed) syncDirectory(path.dirname(file));
  }

  /** Appends one record (a JSON line) and returns once it is written (synced, with FULL). */
  append(record: unknown): void {
    if (this.closed) throw new Error(`the write-ahead log ${this.file} is closed (its bot was restarted)`);
    const line = `${JSON.stringify(record)}\n`;
    const bytes = Buffer.byteLength(line);
    const wrote = writeSync(this.fd, line);
    this.bytes += wrote;
    // A short write (a full disk) leaves a line cut short; the next would be glued to it.
    if (wrote !== bytes) {
      this.close();
      throw new Error(
        `the write-ahead log ${this.file} took ${wrote} of ${bytes} bytes (is the disk full?): the order is not sent`,
      );
    }
    if (this.sync) fdatasyncSync(this.fd);
    this.unsaved++;
  }

  /**
   * One appended record now has its row. When none is left without one, the file is emptied
   * (past 64 KiB, so that it stays small without being truncated at every order).
   */
  saved(): void {
    // Closed: a later instance of the bot owns the file now (and the descriptor may be reused).
    if (this.closed || --this.unsaved > 0 || this.bytes < 65_536) return;
    ftruncateSync(this.fd, 0);
    this.bytes = 0;
  }

  /** Closes the file, emptied first when every line in it has its row. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.unsaved === 0 && this.bytes > 0) ftruncateSync(this.fd, 0);
    } finally {
      closeSync(this.fd);
    }
  }
}

/** The file of a bot's intent log for the SQLite database `dbFile`. */
export function intentLogFile(dbFile: string, botId: string): string {
  return path.join(`${path.resolve(dbFile)}-intents`, `${encodeURIComponent(botId)}.jsonl`);
}

export interface IntentLines<T> {
  readonly records: T[];
  /** Lines that are not complete JSON (a write torn by a power loss), skipped. */
  readonly torn: number;
}

/** Reads a bot's intent log (nothing when there is none). */
export function readIntentLog<T>(file: string): IntentLines<T> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], torn: 0 };
    throw e;
  }
  const records: T[] = [];
  let torn = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    try {
      records.push(JSON.parse(line) as T);
    } catch {
      torn++;
    }
  }
  return { records, torn };
}

/** Empties a bot's intent log (after its records have been replayed into the database). */
export function clearIntentLog(file: string, sync: boolean): void {
  if (!existsSync(file)) return;
  const fd = openSync(file, 'r+');
  try {
    ftruncateSync(fd, 0);
    if (sync) fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // Not possible on every platform (Windows cannot open a directory): the file's own sync stands.
  }
}
