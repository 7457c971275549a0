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
