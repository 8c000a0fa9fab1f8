// The floor of the CLI bench, as a process: read a candle file with the same CSV reader as
// `keel backtest`, run the bare sma-cross loop (bench/bare.ts: the same trades) and print a small
// summary. The bench bundles it to plain JavaScript first, so no TypeScript loader is timed.
import { readBarsFile } from '../packages/data/src/csv.ts';
import { bareLoop } from './bare.ts';

const file = process.argv[2];
if (!file) throw new Error('usage: bare-cli <file.csv[.gz]>');
process.stdout.write(`${JSON.stringify(bareLoop('sma-cross', readBarsFile(file).series))}\n`);
