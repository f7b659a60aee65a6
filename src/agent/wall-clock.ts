/**
 * Wall-clock guards for timers. Node's timers run on a monotonic clock that stops while a Mac sleeps, so a
 * timer armed for 04:20 fires late by the time the machine slept (kelektiv/node-cron #671). These pure
 * decisions compare the wall clock with what should have happened by now.
 */

/** How often the guards look at the wall clock: cheap, and a missed 04:20 run is caught within a minute. */
export const WALL_CLOCK_CHECK_MS = 30_000;

/** A planned run counts as missed once the wall clock is this far past it and it has not fired. */
export const MISSED_RUN_GRACE_MS = 60_000;

/** True when the wall clock has passed a planned run by more than `graceMs` and the run did not fire. */
export function missedRun({ plannedMs, nowMs, graceMs = MISSED_RUN_GRACE_MS }: { plannedMs: number; nowMs: number; graceMs?: number }): boolean {
  return nowMs - plannedMs > graceMs;
}

/**
 * True when the last heartbeat reply is older than three heartbeat intervals. The control session's own
 * silence deadline is a monotonic timer too, so after a sleep only the wall clock tells that the
 * connection (and the public address it reported) is stale.
 */
export function heartbeatStale({ lastHeartbeatMs, nowMs, heartbeatMs }: { lastHeartbeatMs: number | undefined; nowMs: number; heartbeatMs: number }): boolean {
  return lastHeartbeatMs === undefined || nowMs - lastHeartbeatMs > 3 * heartbeatMs;
}

/** Runs `check` every `everyMs` without keeping the process alive; returns the stop function. */
export function everyUnref(everyMs: number, check: () => void): () => void {
  const timer = setInterval(check, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
