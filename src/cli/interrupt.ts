import { signalExitCode, type ExitCode, type StopSignal } from '../errors.js';
/**
 * Ctrl-C and SIGTERM during a saga (docs/guarantees.md, rule 9). The first signal aborts: the
 * engine finishes the step in flight, then rolls back. A second signal stops at once and leaves
 * the saga to `saga recover`, which sees this process is gone and takes it over.
 */
export interface Interrupts {
  readonly signal: AbortSignal;
  /** 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP (the terminal closed), once a signal arrived. */
  exitCode(): ExitCode | undefined;
  dispose(): void;
}

export function listenForInterrupts(onSecond: (signal: NodeJS.Signals) => void): Interrupts {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (received !== undefined) return onSecond(sig);
    received = sig;
    controller.abort(sig);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  process.on('SIGHUP', handler);
  return {
    signal: controller.signal,
    exitCode: () => (received === undefined ? undefined : signalExitCode(received as StopSignal)),
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
      process.off('SIGHUP', handler);
    },
  };
}
