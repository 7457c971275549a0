import { describe, expect, it } from 'vitest';
import { compensationOrder, foldEvents, planRecovery } from '../../src/engine/step-state.js';
import type { StepEvent } from '../../src/engine/store.js';

/** Folding the log: what each step's records say about whether its effect may have happened. */
const ev = (stepIndex: number, event: StepEvent['event'], attempt: number, extra: Partial<StepEvent> = {}): StepEvent => ({
  sagaId: 's', step: `step${stepIndex}`, stepIndex, phase: 'action', event, attempt, at: 0, ...extra,
});

describe('an attempt that never got an outcome keeps its doubt', () => {
  it.each([
    {
      name: 'started #1 (owner stalled), started #2 by a recoverer, failed #2 permanently: still compensated',
      events: [ev(0, 'started', 1), ev(0, 'succeeded', 1), ev(1, 'started', 1), ev(1, 'started', 2), ev(1, 'failed', 2, { errorKind: 'permanent', uncertain: false })],
      order: [1, 0],
    },
    {
      name: 'failed #1 cleanly, retried, failed #2 permanently: nothing of it to undo',
      events: [ev(0, 'started', 1), ev(0, 'succeeded', 1), ev(1, 'started', 1), ev(1, 'failed', 1, { errorKind: 'transient', uncertain: false }), ev(1, 'retrying', 1), ev(1, 'started', 2), ev(1, 'failed', 2, { errorKind: 'permanent', uncertain: false })],
      order: [0],
    },
    {
      name: 'timed out #1, failed #2 permanently: compensated',
      events: [ev(0, 'started', 1), ev(0, 'succeeded', 1), ev(1, 'started', 1), ev(1, 'failed', 1, { errorKind: 'timeout', uncertain: true }), ev(1, 'started', 2), ev(1, 'failed', 2, { errorKind: 'permanent', uncertain: false })],
      order: [1, 0],
    },
  ])('$name', ({ events, order }) => {
    expect(compensationOrder(foldEvents(2, events))).toEqual(order);
  });

  it('a running saga whose step failed permanently after a lost attempt is rolled back, not resumed', () => {
    const states = foldEvents(2, [ev(0, 'started', 1), ev(0, 'succeeded', 1), ev(1, 'started', 1), ev(1, 'started', 2), ev(1, 'failed', 2, { errorKind: 'permanent', uncertain: false })]);
    expect(planRecovery('running', states)).toEqual({ direction: 'backward' });
  });
});
