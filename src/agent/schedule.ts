import { CronJob } from 'cron';
import { everyUnref, missedRun, WALL_CLOCK_CHECK_MS } from './wall-clock.js';

export interface ReregisterScheduleOptions {
  /** Cron expression with seconds, e.g. "0 20 4 * * *". */
  cronTime: string;
  timeZone: string;
  /**
   * Up to this much random delay after the cron time ([rendezvous] reregisterDelay), so every home on one
   * ISP does not knock at once after the same nightly reboot; 0 runs at the cron time.
   */
  maxJitterMs: number;
  run: () => void;
  /** Told when the wall-clock guard runs a job the cron timer missed (the machine slept through it). */
  onMissedRun?: (plannedAt: Date) => void;
  random?: () => number;
  /** Wall clock in ms; injected by tests to simulate a sleep. */
  now?: () => number;
  checkEveryMs?: number;
}

/**
 * The daily re-register after the router's reboot: a cron job that forces a fresh control connection
 * from the punched port, a new public address and a new reachability check. The cron timer is monotonic,
 * so a wall-clock guard runs the job itself when the planned time passed without it (after a sleep) and
 * re-arms the cron timer against the wall clock.
 */
export function scheduleReregister({
  cronTime, timeZone, maxJitterMs, run, onMissedRun, random = Math.random, now = Date.now, checkEveryMs = WALL_CLOCK_CHECK_MS,
}: ReregisterScheduleOptions): { stop(): void; nextRun(): Date } {
  let jitter: NodeJS.Timeout | undefined;
  const fire = (): void => {
    clearTimeout(jitter);
    jitter = setTimeout(run, Math.floor(random() * maxJitterMs));
    jitter.unref();
  };
  const job = CronJob.from({ cronTime, timeZone, start: true, unrefTimeout: true, onTick: () => { plan(); fire(); } });
  let plannedMs = 0;
  const plan = (): void => {
    plannedMs = job.cronTime.getNextDateFrom(new Date(now()), timeZone).toMillis();
  };
  plan();
  const stopGuard = everyUnref(checkEveryMs, () => {
    if (!missedRun({ plannedMs, nowMs: now() })) return;
    onMissedRun?.(new Date(plannedMs));
    void job.stop();
    job.start();
    plan();
    fire();
  });
  return {
    stop() {
      stopGuard();
      clearTimeout(jitter);
      void job.stop();
    },
    nextRun: () => new Date(plannedMs),
  };
}
