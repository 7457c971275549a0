import { hostname, userInfo } from 'node:os';

/**
 * Who is operating saga from this process, as `user@host`: recorded with a cancel so `saga show`
 * can say who asked. A process with no passwd entry (some containers) falls back to its uid.
 */
export function operatorName(env: NodeJS.ProcessEnv = process.env): string {
  let user: string | undefined;
  try {
    user = userInfo().username;
  } catch {
    user = env.USER ?? env.LOGNAME;
  }
  return `${user === undefined || user === '' ? `uid ${process.getuid?.() ?? '?'}` : user}@${hostname()}`;
}
