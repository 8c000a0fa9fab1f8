import { describe, expect, it } from 'vitest';
import { renderHtmlReport, resultFromJson, resultToJson } from '../src/index.ts';
import { hostileRun, realRun, riskRun } from './helpers.ts';

const text = (j: unknown) => JSON.stringify(j, null, 1);

describe('resultFromJson: a result read back from its JSON', () => {
  it('gives the same JSON again, byte for byte (a real run, a hostile one, one with risk events)', () => {
    for (const [name, r] of [
      ['real', realRun().result],
      ['hostile', hostileRun(2_000).result],
      ['risk', riskRun().result],
    ] as const) {
      const json = resultToJson(r);
      const back = resultFromJson(JSON.parse(text(json)));
      expect(text(resultToJson(back)) === text(json), name).toBe(true);
    }
  });

  it('draws the same HTML report as the run itself (params in JSON key order)', () => {
    const { result, bars } = realRun();
    const back = resultFromJson(JSON.parse(text(resultToJson(result))));
    // The JSON sorts free-form keys (params) for stable bytes; the page lists params in that order.
    const sorted = { ...result, params: JSON.parse(text(resultToJson(result).params)) };
    expect(renderHtmlReport(back, bars) === renderHtmlReport(sorted, bars)).toBe(true);
  });

  it('refuses what is not a result', () => {
    expect(() => resultFromJson({ format: 'other' })).toThrow(/not a Keel backtest result/);
  });
});
