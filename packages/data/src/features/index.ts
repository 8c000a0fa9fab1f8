import type { BarSeries, Timeframe } from '@keel/core';
import { type Feature, type FeatureDef, FeatureInputs } from './context.ts';
import { CROSS_ASSET_FEATURES } from './cross-asset.ts';
import { MEAN_REVERSION_FEATURES } from './mean-reversion.ts';
import { MICROSTRUCTURE_FEATURES } from './microstructure.ts';
import { PRICE_FEATURES } from './price.ts';
import { REGIME_FEATURES } from './regime.ts';
import { RISK_FEATURES } from './risk.ts';
import { alignReference, periodsPerYear } from './rolling.ts';
import { TREND_FEATURES } from './trend.ts';
import { VOLATILITY_FEATURES } from './volatility.ts';
import { VOLUME_FEATURES } from './volume.ts';

/**
 * Bar features, computed column by column in forward passes over Float64Arrays. Every value at
 * row i uses rows <= i only (trailing windows, recursive filters started at the first row), so
 * features on a prefix of the data equal the same rows computed on all of it (tested). NaN marks
 * warm-up and rows whose inputs are missing; nothing is back- or forward-filled.
 *
 * A feature that is a named indicator (EMA, MACD, RSI, ROC, ADX, SMA, z-score, ATR, MFI, OBV,
 * VWAP, Donchian) takes its values from core's streaming indicator through core's columnar
 * drivers: one definition of each indicator, the one the TA-Lib and backtrader oracles test.
 * Layout: one module per family, `rolling.ts` (window primitives), `normalise.ts`, `qc.ts`.
 */

export { FEATURE_FAMILIES, type FeatureDef, type FeatureFamily } from './context.ts';
export * from './normalise.ts';
export * from './qc.ts';
export * from './rolling.ts';

export interface FeatureFrame {
  readonly time: Float64Array;
  readonly defs: readonly FeatureDef[];
  readonly columns: readonly Float64Array[];
}

/**
 * Buffers reused across computeFeatures calls of the same length (streaming batches, benchmarks).
 * With a workspace the returned columns are the workspace's own arrays: copy them before the next call.
 */
export class FeatureWorkspace {
  readonly free: Float64Array[] = [];
  readonly outputs: Float64Array[] = [];
  constructor(readonly n: number) {}
}

export interface FeatureOptions {
  readonly timeframe: Timeframe;
  readonly workspace?: FeatureWorkspace;
  /** Reference asset for the cross-asset family (e.g. BTC/USDT), matched on open time. */
  readonly reference?: BarSeries;
}

const FEATURES: readonly Feature[] = [
  ...PRICE_FEATURES,
  ...TREND_FEATURES,
  ...MEAN_REVERSION_FEATURES,
  ...VOLATILITY_FEATURES,
  ...VOLUME_FEATURES,
  ...CROSS_ASSET_FEATURES,
  ...MICROSTRUCTURE_FEATURES,
  ...REGIME_FEATURES,
  ...RISK_FEATURES,
];

export const FEATURE_DEFS: readonly FeatureDef[] = FEATURES.map(({ compute: _compute, ...d }) => d);

/** Computes every feature in FEATURE_DEFS, column by column. */
export function computeFeatures(s: BarSeries, opts: FeatureOptions): FeatureFrame {
  const n = s.length;
  const ws = opts.workspace?.n === n ? opts.workspace : undefined;
  const inputs = new FeatureInputs(s, {
    barsPerYear: periodsPerYear(opts.timeframe),
    reference: opts.reference ? alignReference(s.time, opts.reference) : null,
    pool: ws ? ws.free : [],
  });
  const columns = FEATURES.map((f, k) => {
    let out = ws?.outputs[k];
    if (!out) {
      out = new Float64Array(n);
      if (ws) ws.outputs[k] = out;
    }
    f.compute(inputs, out);
    inputs.endFeature();
    return out;
  });
  inputs.endCall();
  return { time: s.time, defs: FEATURE_DEFS, columns };
}
