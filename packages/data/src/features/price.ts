import type { Feature } from './context.ts';

const logReturn = (k: number): Feature => ({
  name: `ret_${k}`,
  family: 'price',
  warmup: k,
  formula: `ln C_t - ln C_{t-${k}}`,
  compute: (f, out) => void f.logReturn(k, out),
});

export const PRICE_FEATURES: readonly Feature[] = [
  logReturn(1),
  logReturn(5),
  logReturn(15),
  logReturn(60),
  {
    name: 'bar_ret',
    family: 'price',
    warmup: 0,
    formula: 'C_t / O_t - 1',
    compute: (f, out) => {
      for (let i = 0; i < f.n; i++) out[i] = (f.close[i] as number) / (f.open[i] as number) - 1;
    },
  },
  {
    name: 'gap_ret',
    family: 'price',
    warmup: 1,
    formula: 'O_t / C_{t-1} - 1',
    compute: (f, out) => {
      for (let i = 0; i < f.n; i++)
        out[i] = i > 0 ? (f.open[i] as number) / (f.close[i - 1] as number) - 1 : Number.NaN;
    },
  },
];
