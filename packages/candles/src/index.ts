/**
 * @keel/candles: the one reader of candle files (CSV, CSV.GZ and data.binance.vision's .zip, Binance klines with or without a
 * header, generic OHLCV with a header or a column mapping; ms, s or us epochs, ISO text with or
 * without a zone; open or close time columns). It depends on Node's built-ins, @keel/core and fflate (for a zip, loaded only then),
 * so the exchange simulator reads files with the same code as the data pipeline without pulling
 * in DuckDB or ccxt. Held to one table of formats (test-support/candle-formats.ts). Funding-rate
 * files (Binance's archive, ccxt's rows) are read here too, for the same reason: the simulator
 * applies them. So is what a candle file's name says (`fileNameFacts`), so that every command
 * taking a file, the simulator's included, refuses a market the name contradicts.
 */
export * from './close-time.ts';
export * from './csv.ts';
export * from './file-name.ts';
export * from './funding.ts';
export * from './timestamp.ts';
