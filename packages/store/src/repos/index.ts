import { type BacktestRepo, backtestRepo } from './backtests.ts';
import { type BalanceRepo, balanceRepo } from './balances.ts';
import { type BarLogRepo, barLogRepo } from './bar-log.ts';
import { type BotRepo, botRepo } from './bots.ts';
import type { RepoContext } from './context.ts';
import { type EventRepo, eventRepo } from './events.ts';
import { type FillRepo, fillRepo } from './fills.ts';
import { type LockRepo, lockRepo } from './locks.ts';
import { type OrderRepo, orderRepo } from './orders.ts';
import { type PositionRepo, positionRepo } from './positions.ts';
import { type RiskRepo, riskRepo } from './risk.ts';
import { type SessionRepo, sessionRepo } from './sessions.ts';
import { type SetupRepo, setupRepo } from './setups.ts';
import { type StateRepo, stateRepo } from './state.ts';
import { type StopRequestRepo, stopRequestRepo } from './stop-requests.ts';

export type {
  BacktestBars,
  BacktestRecord,
  BacktestsMissing,
  BacktestsRemoved,
  NewBacktest,
  PruneBacktests,
} from './backtests.ts';
export type { StoredBalance } from './balances.ts';
export type { BotMode, BotRecord, BotSettings, NewBot } from './bots.ts';
export type { StoredEvent } from './events.ts';
export type { LockResult } from './locks.ts';
export type { StoredPosition } from './positions.ts';
export type { ResumeRequest, RiskSave, StoredRisk } from './risk.ts';
export type { SessionRecord } from './sessions.ts';
export type { SessionSetupRecord } from './setups.ts';
export type { StoredState } from './state.ts';
export type { StopRequest } from './stop-requests.ts';
export type {
  BacktestRepo,
  BalanceRepo,
  BarLogRepo,
  BotRepo,
  EventRepo,
  FillRepo,
  LockRepo,
  OrderRepo,
  PositionRepo,
  RiskRepo,
  SessionRepo,
  SetupRepo,
  StateRepo,
  StopRequestRepo,
};

/** The repositories, bound either to the store or to one transaction. */
export interface StoreRepos {
  readonly bots: BotRepo;
  readonly locks: LockRepo;
  readonly orders: OrderRepo;
  readonly fills: FillRepo;
  readonly positions: PositionRepo;
  readonly balances: BalanceRepo;
  readonly state: StateRepo;
  readonly events: EventRepo;
  readonly sessions: SessionRepo;
  /** Stop requests for running bots (`keel bots stop`). */
  readonly stopRequests: StopRequestRepo;
  /** The bars each bot saw (`keel bots parity`). */
  readonly barLog: BarLogRepo;
  /** How each session of a bot was set up (`keel bots parity`). */
  readonly setups: SetupRepo;
  /** Backtest runs (`keel backtests`). */
  readonly backtests: BacktestRepo;
  /** Each bot's risk state, halts, denial counts and pending resume (`keel bots resume`). */
  readonly risk: RiskRepo;
}

export function repos(ctx: RepoContext): StoreRepos {
  return {
    bots: botRepo(ctx),
    locks: lockRepo(ctx),
    orders: orderRepo(ctx),
    fills: fillRepo(ctx),
    positions: positionRepo(ctx),
    balances: balanceRepo(ctx),
    state: stateRepo(ctx),
    events: eventRepo(ctx),
    sessions: sessionRepo(ctx),
    stopRequests: stopRequestRepo(ctx),
    barLog: barLogRepo(ctx),
    setups: setupRepo(ctx),
    backtests: backtestRepo(ctx),
    risk: riskRepo(ctx),
  };
}
