import type { BacktestRun, Compressor } from '@keel/runtime/backtests';

/**
 * Keeps runs in the store (`keel backtests`). The store and its driver load only here, once a run
 * is done: a backtest that fails never opens it.
 */
export async function resultCompressor(): Promise<Compressor> {
  return new (await import('@keel/runtime/backtests')).Compressor();
}

export async function saveRun(url: string | undefined, run: BacktestRun, compressed?: Compressor): Promise<number> {
  const gz = compressed === undefined ? undefined : await compressed.done();
  return (await import('@keel/runtime/backtests')).saveBacktestAt(url, run, gz);
}
