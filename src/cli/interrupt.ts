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

/**
 * `onFirst` says at once what the first signal will do: the work it lets finish can take as long
 * as a step's timeout, and a silent wait after Ctrl-C reads as a hang. `onSecond` stops at once.
 */
export function listenForInterrupts(on: { onFirst(signal: NodeJS.Signals): void; onSecond(signal: NodeJS.Signals): void }): Interrupts {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (received !== undefined) return on.onSecond(sig);
    received = sig;
    controller.abort(sig);
    on.onFirst(sig);
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

/** How to send the signal again, in the words of whoever sent it. */
export function again(signal: NodeJS.Signals): string {
  return signal === 'SIGINT' ? 'Ctrl-C again' : `${signal} again`;
}
