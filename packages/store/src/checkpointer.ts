import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';

/**
 * Moves SQLite's WAL checkpoints off the thread that writes orders.
 *
 * In WAL mode the commit that takes the log past `wal_autocheckpoint` pages runs the checkpoint
 * itself: it copies the log into the database file and syncs both, several milliseconds during
 * which that commit does not return. On the live path that commit is an order's write-ahead row,
 * so every few hundred writes one order left milliseconds late. With the checkpointer the writing
 * connection never checkpoints; a worker thread with its own connection runs a PASSIVE checkpoint
 * (which never blocks writers) every `everyMs`. Should the worker fail, the writing connection
 * goes back to checkpointing itself, so the log cannot grow without bound.
 */
export class WalCheckpointer {
  private readonly worker: Worker;
  private stopped = false;
  private readonly exited: Promise<void>;

  constructor(
    private readonly writer: Database.Database,
    file: string,
    everyMs = 1_000,
  ) {
    writer.pragma('wal_autocheckpoint = 0');
    this.worker = new Worker(WORKER, {
      eval: true,
      workerData: { module: createRequire(import.meta.url).resolve('better-sqlite3'), file, everyMs },
    });
    this.worker.unref();
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', () => {
        this.fallBack();
        resolve();
      }),
    );
    this.worker.on('error', () => this.fallBack());
    this.worker.on('message', (m: { error?: string }) => {
      if (m.error !== undefined) this.fallBack();
    });
  }

  /** Back to the writer's own checkpoints (the worker is gone or failing). */
  private fallBack(): void {
    if (this.stopped || !this.writer.open) return;
    this.stopped = true;
    this.writer.pragma('wal_autocheckpoint = 1000');
    void this.worker.terminate();
  }

  /** Stops the worker after a last checkpoint; resolves when its connection is closed. */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.worker.postMessage('stop');
    }
    // Unreferenced, the worker would not keep the process alive for its last checkpoint: a
    // process with nothing else to do would end while close() still waits (exit code 13).
    this.worker.ref();
    await this.exited;
  }
}

// CommonJS, run by the worker thread: its own connection to the same file.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (e) {
    parentPort.postMessage({ error: String((e && e.message) || e) });
  }
};
const timer = setInterval(checkpoint, workerData.everyMs);
parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;
