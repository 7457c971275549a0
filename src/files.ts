import { accessSync, constants } from 'node:fs';

/** Whether this process may write `path` (a file or a directory), as the kernel says for this user. */
export function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
