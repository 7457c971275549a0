import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import type { LocalMachine, ProcessSeen } from './recovery.js';
import type { Owner } from './store.js';

/**
 * Who this process is, in terms another process can check (docs/guarantees.md, rule 7). A pid names a process only
 * inside one PID namespace of one running kernel: two containers with the same hostname each have
 * a pid 1234, and seeing "no process 1234" from one says nothing about the other. So an owner
 * records, besides host and pid, the kernel's boot id and its PID namespace (its "pid scope"),
 * and when the process started (so a pid reused by a newer process is not mistaken for the
 * owner). Read from /proc on Linux; where that is not readable the scope is null and only the
 * lease can tell that an owner died.
 */

/** `<boot id>/pid:[<namespace inode>]`, or null when /proc does not tell (not Linux, or not ours). */
export function readPidScope(): string | null {
  try {
    // A /proc mounted from another PID namespace would describe processes we cannot signal.
    if (readlinkSync('/proc/self') !== String(process.pid)) return null;
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const namespace = readlinkSync('/proc/self/ns/pid');
    return bootId === '' ? null : `${bootId}/${namespace}`;
  } catch {
    return null;
  }
}

interface ProcStat {
  readonly state: string;
  /** Clock ticks after boot when the process started (field 22 of /proc/<pid>/stat). */
  readonly startedAt: number;
}

function readStat(pid: number | 'self'): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const startedAt = Number(fields[19]);
    return Number.isSafeInteger(startedAt) ? { state: fields[0] ?? '', startedAt } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What this process can see of process `pid` in its own PID namespace. The kernel (signal 0)
 * decides whether it exists (EPERM: it exists, owned by another user); /proc adds its start time
 * and whether it has already exited (a zombie waiting for its parent).
 */
export function seeProcess(pid: number): ProcessSeen {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return { alive: false };
  }
  const stat = readStat(pid);
  if (stat?.state === 'Z' || stat?.state === 'X') return { alive: false };
  return { alive: true, startedAt: stat?.startedAt ?? null };
}

/** This process as the owner of the sagas it drives. */
export function processOwner(): Owner {
  const host = hostname();
  const pidScope = readPidScope();
  return {
    id: `${host}:${process.pid}:${randomUUID().slice(0, 8)}`,
    host,
    pid: process.pid,
    pidScope,
    startedAt: pidScope === null ? null : (readStat('self')?.startedAt ?? null),
  };
}

/** How this process sees the machine it runs on, for `isAbandoned`. */
export function localMachine(owner: Pick<Owner, 'host' | 'pidScope'> = { host: hostname(), pidScope: readPidScope() }): LocalMachine {
  return { host: owner.host, pidScope: owner.pidScope, process: seeProcess };
}
