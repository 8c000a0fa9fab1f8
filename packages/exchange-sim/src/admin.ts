/**
 * The admin endpoint of a running simulator: `POST /_keel/admin/fault` with a JSON fault command
 * (see fault-commands.ts). It exists only when the simulator is started with `admin: true`
 * (`--admin`), which needs a loopback host, and it answers loopback clients only. Admin requests
 * bypass the REST pipeline: no weight, no faults (a held or 429'd admin call could not undo them).
 * Both halves of the protocol live here: the handler and the client `keel exchange-sim fault` uses.
 */
import { type IncomingMessage, request, type ServerResponse } from 'node:http';
import { applyFault, FaultCommandError, type FaultRequest, parseFaultCommand } from './fault-commands.ts';
import type { SimFaults } from './faults.ts';
import { readBody } from './rest/server.ts';

export const ADMIN_PREFIX = '/_keel/admin/';
export const ADMIN_FAULT_PATH = `${ADMIN_PREFIX}fault`;
/** Every admin answer names the simulator, so a client can tell it from another server on the port. */
const SIMULATOR = 'keel-exchange-sim';

export function isAdminPath(url: string | undefined): boolean {
  return (url ?? '').startsWith(ADMIN_PREFIX);
}

export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  return isLoopbackHost(address.startsWith('::ffff:') ? address.slice(7) : address);
}

export type AdminErrorCode = 'admin-disabled' | 'not-loopback' | 'bad-request' | 'not-found';

export interface AdminOptions {
  enabled: boolean;
  faults: SimFaults;
}

export async function handleAdminRequest(req: IncomingMessage, res: ServerResponse, opts: AdminOptions): Promise<void> {
  const body = await readBody(req);
  const fail = (status: number, code: AdminErrorCode, message: string): void =>
    writeJson(res, status, { simulator: SIMULATOR, error: { code, message } });
  if (!opts.enabled) {
    fail(403, 'admin-disabled', 'the admin endpoint is disabled: start the simulator with --admin');
    return;
  }
  if (!isLoopbackAddress(req.socket.remoteAddress)) {
    fail(403, 'not-loopback', 'the admin endpoint answers loopback clients only');
    return;
  }
  const path = new URL(req.url ?? '/', 'http://sim').pathname;
  if (req.method !== 'POST' || path !== ADMIN_FAULT_PATH) {
    fail(404, 'not-found', `no admin endpoint ${req.method ?? ''} ${path}; use POST ${ADMIN_FAULT_PATH}`);
    return;
  }
  let input: unknown;
  try {
    input = JSON.parse(body);
  } catch {
    fail(400, 'bad-request', 'the body is not JSON');
    return;
  }
  try {
    const cmd = parseFaultCommand(input);
    writeJson(res, 200, { simulator: SIMULATOR, kind: cmd.kind, effect: applyFault(opts.faults, cmd) });
  } catch (e) {
    if (!(e instanceof FaultCommandError)) throw e;
    fail(400, 'bad-request', e.message);
  }
}

function writeJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** What sending a fault command to a port came to. */
export type FaultSendResult =
  | { type: 'applied'; effect: string }
  | { type: 'not-running'; detail: string }
  | { type: 'refused'; code: AdminErrorCode; message: string }
  | { type: 'not-a-simulator'; detail: string };

/** Sends a fault command to the simulator's admin endpoint on 127.0.0.1:port. */
export function sendFaultCommand(port: number, cmd: FaultRequest, timeoutMs = 5000): Promise<FaultSendResult> {
  const text = JSON.stringify(cmd);
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: ADMIN_FAULT_PATH,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (e) => resolve({ type: 'not-running', detail: e.message }));
        res.on('end', () => resolve(interpret(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) =>
      resolve({ type: 'not-running', detail: e.code === 'ECONNREFUSED' ? 'connection refused' : e.message }),
    );
    req.end(text);
  });
}

function interpret(status: number, text: string): FaultSendResult {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const b = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  if (b.simulator !== SIMULATOR) return { type: 'not-a-simulator', detail: `HTTP ${status}` };
  const error = typeof b.error === 'object' && b.error !== null ? (b.error as Record<string, unknown>) : undefined;
  if (status === 200 && typeof b.effect === 'string') return { type: 'applied', effect: b.effect };
  const code = error?.code;
  return {
    type: 'refused',
    code: code === 'admin-disabled' || code === 'not-loopback' || code === 'not-found' ? code : 'bad-request',
    message: typeof error?.message === 'string' ? error.message : `HTTP ${status}`,
  };
}
