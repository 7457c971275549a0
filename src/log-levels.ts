/**
 * The levels `LOG_LEVEL` accepts (pino's, and `silent`). Apart from src/log.ts so that reading the
 * settings, which every command does at start-up, does not load pino: only the commands that log
 * (checkout, recover, bench) pay for it.
 */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
