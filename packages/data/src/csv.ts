// The candle-file reader is @keel/candles (shared with the exchange simulator, which must not pull
// in DuckDB); @keel/data re-exports it so its users keep one import.
export * from '@keel/candles';
