// Whether a restarted paper bot keeps its fills here. Shared by the tests that restart one.
import { Account, ClientOrderId, defineInstrument, emptyBar, newOrderState, SimulatedVenue } from '@keel/core';

/**
 * Whether two simulated venues (a paper bot before and after a restart) give different orders'
 * fills different trade ids. Where they number trades from T1 in every process (a bug fixed in
 * core, on its way in), a restarted paper bot's fills cannot be stored: the store refuses a second
 * execution under one trade id and the bot stops. The tests that restart a paper bot skip then,
 * with this note.
 */
function tradeIdsSurviveRestarts(): boolean {
  const inst = defineInstrument({ symbol: 'BTC/USDT' });
  const firstTradeId = (id: string) => {
    const venue = new SimulatedVenue([inst], new Account('USDT', 1_000), {});
    let tradeId = '';
    venue.connect((r) => {
      if (r.type === 'fill') tradeId = r.tradeId;
    });
    const o = newOrderState(
      { id: ClientOrderId(id), symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: 0.001, timeInForce: 'GTC' },
      0,
      100,
    );
    o.status = 'submitted';
    venue.submit(o, 0);
    venue.onBar('BTC/USDT', { ...emptyBar(), time: 0, open: 100, high: 100, low: 100, close: 100, volume: 10 }, 60_000);
    return tradeId;
  };
  return firstTradeId('ka-s1-1') !== firstTradeId('ka-s2-1');
}
export const PAPER_RESTART_SAFE = tradeIdsSurviveRestarts();
if (!PAPER_RESTART_SAFE)
  console.warn(
    '[skip] tests that restart a paper bot: simulated trade ids restart at T1 in every process here, so its fills after a restart cannot be stored (see tradeIdsSurviveRestarts)',
  );
