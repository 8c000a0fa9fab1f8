import { defineBrackets } from '../../src/index.ts';

/** Binance's 2021 BTCUSDT tiers (the first five), as its leverage & margin table listed them. */
export const BTCUSDT_2021 = defineBrackets([
  { notionalFloor: 0, notionalCap: 50_000, maxLeverage: 125, maintMarginRate: 0.004 },
  { notionalFloor: 50_000, notionalCap: 250_000, maxLeverage: 100, maintMarginRate: 0.005 },
  { notionalFloor: 250_000, notionalCap: 1_000_000, maxLeverage: 50, maintMarginRate: 0.01 },
  { notionalFloor: 1_000_000, notionalCap: 10_000_000, maxLeverage: 20, maintMarginRate: 0.025 },
  { notionalFloor: 10_000_000, notionalCap: 20_000_000, maxLeverage: 10, maintMarginRate: 0.05 },
]);
/** Binance's 2021 ETHUSDT tiers (the first seven). */
export const ETHUSDT_2021 = defineBrackets([
  { notionalFloor: 0, notionalCap: 10_000, maxLeverage: 100, maintMarginRate: 0.005 },
  { notionalFloor: 10_000, notionalCap: 100_000, maxLeverage: 75, maintMarginRate: 0.0065 },
  { notionalFloor: 100_000, notionalCap: 500_000, maxLeverage: 50, maintMarginRate: 0.01 },
  { notionalFloor: 500_000, notionalCap: 1_000_000, maxLeverage: 25, maintMarginRate: 0.02 },
  { notionalFloor: 1_000_000, notionalCap: 2_000_000, maxLeverage: 10, maintMarginRate: 0.05 },
  { notionalFloor: 2_000_000, notionalCap: 5_000_000, maxLeverage: 5, maintMarginRate: 0.1 },
  { notionalFloor: 5_000_000, notionalCap: 10_000_000, maxLeverage: 4, maintMarginRate: 0.125 },
]);
