import type { BacktestRun, PendingBacktest } from '@keel/runtime/backtests';

/**
 * Keeps runs in the store (`keel backtests`). The store and its driver load only here, once a run
 * is done: a backtest that fails never opens it. The run's chart starts compressing at once (on a
 * thread pool) while the caller prints the result; `saveAt` writes it.
 */
export async function keepRun(run: BacktestRun): Promise<PendingBacktest> {
  return new (await import('@keel/runtime/backtests')).PendingBacktest(run);
}
