/**
 * @keel/exchange-sim — a local exchange that speaks the Binance spot protocol closely enough that
 * the real ccxt `binance` / `ccxt.pro.binance` clients work against it, with replayed candles,
 * a matching engine and scriptable faults. See docs/exchange-sim.md.
 */

export { BarFileError, parseBarsCsv, readBarsFile, syntheticBars } from './bars.ts';
export type { ExchangeSimCliIo } from './cli.ts';
export { EXCHANGE_SIM_HELP, runExchangeSimCli } from './cli.ts';
export { pricePath, TICKS_PER_BAR } from './engine.ts';
export type { HttpFaultOptions, WsFilter, WsKind } from './faults.ts';
export { SimFaults } from './faults.ts';
export type { CcxtExtraConfig, CcxtSimConfig } from './sim.ts';
export { ccxtConfigFor, ExchangeSim, startExchangeSim } from './sim.ts';
export type {
  ExchangeSimOptions,
  OrderSide,
  OrderStatus,
  OrderType,
  SimAccountOptions,
  SimBalance,
  SimBar,
  SimFeeOptions,
  SimFill,
  SimLiquidityOptions,
  SimMarketOptions,
  SimOrder,
  SimRateLimitOptions,
  TimeInForce,
} from './types.ts';
