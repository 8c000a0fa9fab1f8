/**
 * @keel/exchange-sim — a local exchange that speaks the Binance spot protocol closely enough that
 * the real ccxt `binance` / `ccxt.pro.binance` clients work against it, with replayed candles,
 * a matching engine and scriptable faults. See docs/exchange-sim.md.
 */

export type { FaultSendResult } from './admin.ts';
export { ADMIN_FAULT_PATH, sendFaultCommand } from './admin.ts';
export { BarFileError, parseBarsCsv, readBarsFile, syntheticBars } from './bars.ts';
export type { CcxtExtraConfig, CcxtSimConfig } from './ccxt-config.ts';
export { ccxtConfigFor } from './ccxt-config.ts';
export type { ExchangeSimCliIo } from './cli.ts';
export { EXCHANGE_SIM_HELP, runExchangeSimCli } from './cli.ts';
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
  SimLiquidityOptions,
  SimMarketOptions,
  SimOrder,
  SimRateLimitOptions,
  TimeInForce,
} from './types.ts';
