/**
 * Whether to colour a stream: a terminal, and neither NO_COLOR nor FORCE_COLOR=0 set. Decided in
 * main.ts for every command, so it lives apart from the logger (src/log.ts): a command that does
 * not log never loads pino.
 */
export function wantsColor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined) return env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false';
  return stream.isTTY === true;
}
