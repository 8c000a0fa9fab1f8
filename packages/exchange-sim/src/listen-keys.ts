/**
 * listenKeys of the older user-data stream flow (POST /api/v3/userDataStream, then
 * /ws/<listenKey>): which account each key belongs to, and who must hear when one is closed.
 */
import { randomBytes } from 'node:crypto';

export class ListenKeys {
  private readonly owners = new Map<string, string>();
  private readonly closedListeners: Array<(listenKey: string) => void> = [];

  /** The account's key (one per account, as on Binance), created on first use. */
  open(apiKey: string): string {
    for (const [key, owner] of this.owners) if (owner === apiKey) return key;
    const key = randomBytes(30).toString('base64url').slice(0, 60);
    this.owners.set(key, apiKey);
    return key;
  }

  ownerOf(listenKey: string): string | undefined {
    return this.owners.get(listenKey);
  }

  close(listenKey: string): void {
    if (!this.owners.delete(listenKey)) return;
    for (const l of this.closedListeners) l(listenKey);
  }

  onClosed(listener: (listenKey: string) => void): void {
    this.closedListeners.push(listener);
  }
}
