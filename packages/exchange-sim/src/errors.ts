/** A Binance-shaped error: HTTP status plus `{ code, msg }` in the body. */
export class SimError extends Error {
  override name = 'SimError';
  constructor(
    readonly http: number,
    readonly code: number,
    msg: string,
    /** Extra body fields (cancelReplace reports both halves under `data`). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(msg);
  }

  body(): Record<string, unknown> {
    return { code: this.code, msg: this.message, ...this.extra };
  }
}

/** Binance answers request errors (4xxx codes in -1xxx/-2xxx) with HTTP 400, auth ones with 401. */
export function binanceError(code: number, msg: string, http = 400): SimError {
  return new SimError(http, code, msg);
}

/** -1102: a mandatory parameter is missing. */
export function mandatoryParam(name: string): SimError {
  return binanceError(-1102, `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`);
}
