import { describe, expect, it } from 'vitest';
import { isAbandoned, type LocalMachine, type ProcessSeen } from '../../src/engine/recovery.js';
import type { SagaRecord } from '../../src/engine/store.js';

/**
 * Rule 7: a saga is taken over when it has no owner, its lease expired, or its owner is provably
 * gone. Provably: only from the owner's own PID namespace on the same running kernel, where a pid
 * means the same process; anywhere else a pid says nothing and only the lease counts.
 */
const NOW = 1_000_000;
const SCOPE = 'boot-a/pid:[4026531836]';
const machine = (seen: ProcessSeen, over: Partial<LocalMachine> = {}): LocalMachine => ({ host: 'box', pidScope: SCOPE, process: () => seen, ...over });
const DEAD: ProcessSeen = { alive: false };
const ALIVE_SAME: ProcessSeen = { alive: true, startedAt: 500 };
const ALIVE_OTHER: ProcessSeen = { alive: true, startedAt: 900 };
const ALIVE_UNKNOWN: ProcessSeen = { alive: true, startedAt: null };

type Owner = Pick<SagaRecord, 'status' | 'ownerId' | 'ownerHost' | 'ownerPid' | 'ownerPidScope' | 'ownerStartedAt' | 'leaseUntil'>;
const owned = (over: Partial<Owner> = {}): Owner => ({
  status: 'running', ownerId: 'box:42:abcd', ownerHost: 'box', ownerPid: 42, ownerPidScope: SCOPE, ownerStartedAt: 500, leaseUntil: NOW + 30_000, ...over,
});

describe('isAbandoned', () => {
  it.each([
    { name: 'terminal sagas are never abandoned', saga: owned({ status: 'completed', ownerId: null, leaseUntil: null }), seen: DEAD, want: false },
    { name: 'no owner', saga: owned({ ownerId: null, leaseUntil: null }), seen: ALIVE_SAME, want: true },
    { name: 'lease expired, owner looks alive', saga: owned({ leaseUntil: NOW - 1 }), seen: ALIVE_SAME, want: true },
    { name: 'lease current, owner alive (same start time)', saga: owned(), seen: ALIVE_SAME, want: false },
    { name: 'same host and namespace, owner pid gone', saga: owned(), seen: DEAD, want: true },
    { name: 'same host and namespace, pid reused by a later process', saga: owned(), seen: ALIVE_OTHER, want: true },
    { name: 'same namespace, pid alive, start time unknown here', saga: owned(), seen: ALIVE_UNKNOWN, want: false },
    { name: 'same namespace, pid alive, owner start time not recorded', saga: owned({ ownerStartedAt: null }), seen: ALIVE_OTHER, want: false },
    { name: 'same namespace, owner start time not recorded, pid gone', saga: owned({ ownerStartedAt: null }), seen: DEAD, want: true },
    { name: 'same hostname, another PID namespace (a container): its pid means nothing here', saga: owned({ ownerPidScope: 'boot-a/pid:[4026532000]' }), seen: DEAD, want: false },
    { name: 'same hostname, another boot (a clone, or a reboot): wait for the lease', saga: owned({ ownerPidScope: 'boot-b/pid:[4026531836]' }), seen: DEAD, want: false },
    { name: 'another host', saga: owned({ ownerHost: 'other' }), seen: DEAD, want: false },
    { name: 'owner recorded no scope (an older saga, or no /proc)', saga: owned({ ownerPidScope: null }), seen: DEAD, want: false },
    { name: 'stuck and owned: its owner gone', saga: owned({ status: 'stuck' }), seen: DEAD, want: true },
  ])('$name -> $want', ({ saga, seen, want }) => {
    expect(isAbandoned(saga, NOW, machine(seen))).toBe(want);
  });

  it('a recoverer that cannot read its own scope waits for the lease, whatever it sees of the pid', () => {
    expect(isAbandoned(owned(), NOW, machine(DEAD, { pidScope: null }))).toBe(false);
    expect(isAbandoned(owned({ leaseUntil: NOW - 1 }), NOW, machine(ALIVE_SAME, { pidScope: null }))).toBe(true);
  });

  it('never asks about a pid it cannot interpret', () => {
    const asked: number[] = [];
    const probe: LocalMachine = { host: 'box', pidScope: SCOPE, process: (pid) => (asked.push(pid), DEAD) };
    isAbandoned(owned({ ownerPidScope: 'boot-a/pid:[4026532000]' }), NOW, probe);
    isAbandoned(owned({ ownerHost: 'other' }), NOW, probe);
    expect(asked).toEqual([]);
  });
});
