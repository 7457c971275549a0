import { InvalidArgumentError } from 'commander';
import { COMPENSATION_FAULT_MODES, FAULT_MODES, type CompensationFaultMode, type FaultMode } from '../engine/faults.js';

/**
 * Option parsers: text in, value out, or an InvalidArgumentError whose message says what is
 * valid. Commander turns it into one usage line and exit 2; the same parsers check values that
 * come from the environment (see settings.ts).
 */
export const MAX_QTY = 10_000;

export function parseQuantity(text: string): number {
  return parseWhole(text, 1, MAX_QTY, `--qty must be a whole number of units from 1 to ${MAX_QTY}.`);
}

/** An id flag; `example` is a real id of the kind the flag takes (a customer id for --customer). */
export function parseId(flag: string, example: number): (text: string) => number {
  return (text) => parseWhole(text, 1, 2_147_483_647, `${flag} must be a positive whole-number id, such as ${example}.`);
}

export function parseCount(flag: string, min: number, max: number): (text: string) => number {
  return (text) => parseWhole(text, min, max, `${flag} must be a whole number from ${min} to ${max}.`);
}

export function parseChoice<T extends string>(flag: string, choices: readonly T[]): (text: string) => T {
  return (text) => {
    if ((choices as readonly string[]).includes(text)) return text as T;
    throw new InvalidArgumentError(`${flag} must be one of ${choices.join(', ')}.`);
  };
}

/** An on/off environment variable: 1, true, yes or on; 0, false, no or off. */
export function parseSwitch(name: string): (text: string) => boolean {
  return (text) => {
    const t = text.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(t)) return true;
    if (['0', 'false', 'no', 'off'].includes(t)) return false;
    throw new InvalidArgumentError(`${name} must be 1 (on) or 0 (off).`);
  };
}

export const parseFailMode: (text: string) => FaultMode = parseChoice('--fail-mode', FAULT_MODES);
export const parseCompensationFailMode: (text: string) => CompensationFaultMode = parseChoice('--fail-compensation-mode', COMPENSATION_FAULT_MODES);

export function parseKey(text: string): string {
  if (!/^[\w.:-]{1,128}$/.test(text)) {
    throw new InvalidArgumentError('--key must be 1 to 128 letters, digits, or . _ : - characters.');
  }
  return text;
}

function parseWhole(text: string, min: number, max: number, rule: string): number {
  const trimmed = text.trim();
  const n = Number(trimmed);
  if (!/^[+-]?\d+$/.test(trimmed) || !Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(rule);
  return n;
}

const DURATION_UNITS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1000 } as const;

/** A duration as `30d`, `12h`, `90m` or `45s` (one whole number, one unit), in milliseconds. */
export function parseDuration(flag: string): (text: string) => number {
  return (text) => {
    const m = /^(\d{1,7})([dhms])$/.exec(text.trim());
    if (m === null) throw new InvalidArgumentError(`${flag} must be a whole number and a unit, d, h, m or s, such as 30d, 12h, 90m or 45s.`);
    return Number(m[1]) * DURATION_UNITS[m[2] as keyof typeof DURATION_UNITS];
  };
}
