import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `probe` until it gives something other than undefined or false, and returns that; fails naming
 * `what` after `timeoutMs`. For positive checks on things that happen asynchronously (a log line, a file,
 * a registration): a fixed sleep before such a check is either too short on a slow machine or wasted time.
 */
export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe();
    if (found !== undefined && found !== false) return found;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}
