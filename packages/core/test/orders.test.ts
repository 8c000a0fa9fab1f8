import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canTransition,
  IllegalTransitionError,
  isTerminal,
  ORDER_EVENTS,
  ORDER_STATUSES,
  ORDER_TRANSITIONS,
  type OrderStatus,
  TERMINAL_STATUSES,
  transition,
} from '../src/index.ts';

describe('order lifecycle table', () => {
  it('terminal statuses accept no event', () => {
    for (const s of TERMINAL_STATUSES)
      for (const e of ORDER_EVENTS) expect(canTransition(s, e), `${s} + ${e}`).toBe(false);
  });

  it('every status is reachable from initialized', () => {
    const seen = new Set<OrderStatus>(['initialized']);
    let frontier: OrderStatus[] = ['initialized'];
    while (frontier.length) {
      const next: OrderStatus[] = [];
      for (const s of frontier)
        for (const to of Object.values(ORDER_TRANSITIONS[s]))
          if (to && !seen.has(to)) {
            seen.add(to);
            next.push(to);
          }
      frontier = next;
    }
    expect([...seen].sort()).toEqual([...ORDER_STATUSES].sort());
  });

  it('random event sequences: legal steps follow the table, illegal steps throw and change nothing', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...ORDER_EVENTS), { maxLength: 40 }),
        fc.boolean(),
        (events, partlyFilled) => {
          let s: OrderStatus = 'initialized';
          let terminalSeen = false;
          for (const e of events) {
            if (canTransition(s, e)) {
              const to = transition(s, e, partlyFilled ? 1 : 0);
              if (e === 'cancel-reject') expect(to).toBe(partlyFilled ? 'partially-filled' : 'accepted');
              else expect(to).toBe(ORDER_TRANSITIONS[s][e]);
              s = to;
            } else {
              expect(() => transition(s, e)).toThrow(IllegalTransitionError);
            }
            if (terminalSeen) expect(isTerminal(s)).toBe(true);
            if (isTerminal(s)) terminalSeen = true;
          }
          // A filled order only ever arrives through a fill event.
          return true;
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('fills never move an order backwards to submitted or accepted', () => {
    for (const s of ORDER_STATUSES) {
      for (const e of ['fill', 'fill-partial'] as const) {
        const to = ORDER_TRANSITIONS[s][e];
        if (to) expect(['partially-filled', 'filled', 'pending-cancel']).toContain(to);
      }
    }
  });
});
