/** One client WebSocket connection and what it is subscribed to. */
import type { WebSocket } from 'ws';
import type { WsKind } from '../faults.ts';

export interface Connection {
  ws: WebSocket;
  /** `market` for /ws and /stream, `api` for the WebSocket API (/ws-api/v3). */
  kind: Exclude<WsKind, 'user'>;
  /** /stream wraps every payload as `{stream, data}`. */
  combined: boolean;
  streams: Set<string>;
  /** User data this connection receives: apiKey -> subscriptionId (ws-api) or -1 (listenKey). */
  users: Map<string, number>;
  listenKey: string | undefined;
  /** A message held back by the reorder fault, sent after the next one. */
  held: string | undefined;
}

/** The kind a fault filter sees: a connection carrying user data counts as `user`. */
export function faultKindOf(c: Connection): WsKind {
  return c.users.size > 0 || c.listenKey ? 'user' : c.kind;
}

/** Where stream publishers send: the gateway, which applies the WS faults on the way out. */
export interface WsOutbound {
  /** Sends to every connection subscribed to the stream. */
  publish(stream: string, data: unknown): void;
  /** True when some connection is subscribed to a stream starting with `prefix`. */
  wants(prefix: string): boolean;
  /** Sends an event to every connection receiving the account's user data. */
  publishUser(apiKey: string, event: unknown): void;
}
