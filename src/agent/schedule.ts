import { CronJob } from 'cron';

export interface ReregisterScheduleOptions {
  /** Cron expression with seconds, e.g. "0 20 4 * * *". */
  cronTime: string;
  timeZone: string;
  /** Up to this much random delay after the cron time, so every home on one ISP does not knock at once. */
  maxJitterMs: number;
  run: () => void;
  random?: () => number;
}

/**
 * The daily re-register after the router's reboot: a cron job that forces a fresh control connection
 * from the punched port, a new public address and a new reachability check.
 */
export function scheduleReregister({ cronTime, timeZone, maxJitterMs, run, random = Math.random }: ReregisterScheduleOptions): { stop(): void; nextRun(): Date } {
  let jitter: NodeJS.Timeout | undefined;
  const job = CronJob.from({
    cronTime,
    timeZone,
    start: true,
    onTick: () => {
      clearTimeout(jitter);
      jitter = setTimeout(run, Math.floor(random() * maxJitterMs));
      jitter.unref();
    },
  });
  return {
    stop() {
      clearTimeout(jitter);
      void job.stop();
    },
    nextRun: () => job.nextDate().toJSDate(),
  };
}
