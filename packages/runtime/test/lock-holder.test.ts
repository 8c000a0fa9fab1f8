import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { holderIsDeadHere } from '../src/bot.ts';

describe('holderIsDeadHere: may a crashed holder’s lock be taken at once?', () => {
  it('yes for a process of this host that has exited; no for live ones, other hosts and odd names', () => {
    const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    const gonePid = Number(child.stdout);
    expect(gonePid).toBeGreaterThan(0);
    expect(holderIsDeadHere(`${hostname()}:${gonePid}:abc123`)).toBe(true);
    expect(holderIsDeadHere(`${hostname()}:${process.pid}:abc123`)).toBe(false); // this process
    expect(holderIsDeadHere(`${hostname()}:${process.ppid}:abc123`)).toBe(false); // alive
    expect(holderIsDeadHere(`elsewhere:${gonePid}:abc123`)).toBe(false); // another host: the TTL decides
    expect(holderIsDeadHere('not-a-lock-owner')).toBe(false);
  });
});
