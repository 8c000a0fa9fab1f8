/**
 * @keel/exchange-sim — a local exchange that speaks the Binance spot protocol, or Binance's USDⓈ-M
 * futures protocol (`market: 'futures'`), closely enough that the real ccxt `binance` /
 * `binanceusdm` clients (and their ccxt.pro versions) work against it, with replayed candles, a
 * matching engine and scriptable faults. See docs/exchange-sim.md and docs/futures.md.
 */

export type { FaultSendResult } from './admin.ts';
export { ADMIN_FAULT_PATH, sendFaultCommand } from './admin.ts';
export { BarFileError, parseBarsCsv, readBarsFile, syntheticBars } from './bars.ts';
export type { CcxtExtraConfig, CcxtSimConfig } from './ccxt-config.ts';
export { ccxtConfigFor } from './ccxt-config.ts';
export type { ExchangeSimCliIo } from './cli.ts';
export { EXCHANGE_SIM_HELP, runExchangeSimCli } from './cli.ts';
export type { AccountView, AssetView, PositionView } from './exchange/futures/ledger.ts';
export type { LiquidationRecord } from './exchange/futures/liquidation.ts';
export type {
  AlgoStatus,
  FuturesFill,
  IncomeRecord,
  SimAlgoOrder,
  SimFuturesOrder,
  SimPosition,
} from './exchange/futures/model.ts';
export { pricePath, TICKS_PER_BAR } from './exchange/replay.ts';
export type { FaultCommand, FaultKind, FaultRequest } from './fault-commands.ts';
export {
  applyFault,
  FAULT_KIND_SPECS,
  FAULT_KINDS,
  FaultCommandError,
  parseFaultCommand,
} from './fault-commands.ts';
export type { HttpFaultOptions, WsFilter, WsKind } from './faults.ts';
export { SimFaults } from './faults.ts';
export {
  DEFAULT_FUNDING_RATE,
  DEFAULT_FUTURES_FEES,
  DEFAULT_LIQUIDATION_FEE,
} from './futures-venue.ts';
export { ExchangeSim, startExchangeSim } from './sim.ts';
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
  SimFuturesOptions,
  SimLiquidityOptions,
  SimMarket,
  SimMarketOptions,
  SimOrder,
  SimRateLimitOptions,
  TimeInForce,
} from './types.ts';
