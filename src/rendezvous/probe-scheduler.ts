import type { Logger } from '../common/logger.js';
import { checkReachability, probeReachability, type ProbeFunction, type ProbeResult, type ProbeTarget } from './prober.js';

export interface ProbeSchedulerOptions {
  /** Longest time between two checks of a watched agent. */
  intervalMs: number;
  timeoutMs: number;
  /**
   * After a failed check the next one comes sooner: after retryMs, then twice that, and so on up to
   * intervalMs (default 1 s). A check that raced the agent's listener, or a brief outage, is then corrected
   * in a second instead of a whole interval.
   */
  retryMs?: number;
  /** Checks running at once at most (default 64); more wait their turn, so a burst costs time, not memory. */
  maxConcurrent?: number;
  /** Called with each result that is still current (not overtaken by a newer target for that agent). */
  onResult(name: string, target: ProbeTarget, result: ProbeResult): void;
  logger: Logger;
  /** The check (default checkReachability); tests inject a fake. */
  probe?: ProbeFunction;
  /**
   * Runs when the check fails with "tls error", and its result counts instead (default probeReachability
   * with the default check, none with an injected one): a TLS stack the light check cannot talk to is no
   * reason to call an agent unreachable.
   */
  fallback?: ProbeFunction;
  /** Time and the sweep's timer (default the real ones); tests pass a clock they move by hand. */
  clock?: SchedulerClock;
  /** The jitter's random numbers in [0, 1) (default Math.random). */
  random?: () => number;
}

/** What the scheduler needs of time: the current time, and a timer that repeats until it is cancelled. */
export interface SchedulerClock {
  now(): number;
  /** Calls `tick` every `ms` (without keeping the process alive) until the returned function is called. */
  repeat(ms: number, tick: () => void): () => void;
}

export const REAL_CLOCK: SchedulerClock = {
  now: () => Date.now(),
  repeat(ms, tick) {
    const timer = setInterval(tick, ms).unref();
    return () => clearInterval(timer);
  },
};

/** How much earlier than intervalMs a periodic check may come. */
const CHECK_JITTER = 0.1;
/** The sweep that starts due checks runs at most this far apart. */
const MAX_TICK_MS = 1000;

interface Watch {
  name: string;
  target: ProbeTarget;
  /** Failed checks in a row. */
  failures: number;
}

/**
 * Runs reachability checks per online agent: at once when told (registration, address change), then
 * every intervalMs counted from the start of the previous check, so an agent is never unchecked longer
 * than the interval plus one timeout; sooner after a failure (see retryMs). A check overtaken by a new
 * target (or a stop) is dropped when it ends.
 *
 * Due checks wait in slots of one tick and one sweep timer starts them: a timer per agent, each re-armed
 * with a jittered delay, would keep thousands of Node timer lists alive on a large rendezvous.
 */
export class ProbeScheduler {
  private readonly watches = new Map<string, Watch>();
  private readonly probe: ProbeFunction;
  private readonly fallback: ProbeFunction | undefined;
  private closed = false;
  private running = 0;
  /** Checks waiting for a free slot, first come first served. */
  private readonly waiting: (() => void)[] = [];
  /** Fine enough for the shortest delay a check waits (a quarter of it), coarse enough to batch. */
  private readonly tickMs: number;
  /** Watches by the tick they are due in; one stopped or replaced meanwhile is skipped when it comes up. */
  private readonly due = new Map<number, Watch[]>();
  /** The first tick the sweep has not started yet. */
  private nextTick = 0;
  /** Cancels the sweep's timer; undefined while no check is due. */
  private stopSweeper: (() => void) | undefined;
  private readonly clock: SchedulerClock;
  private readonly random: () => number;

  constructor(private readonly options: ProbeSchedulerOptions) {
    this.probe = options.probe ?? checkReachability;
    this.clock = options.clock ?? REAL_CLOCK;
    this.random = options.random ?? Math.random;
    this.fallback = options.fallback ?? (options.probe ? undefined : probeReachability);
    this.tickMs = Math.max(1, Math.min(MAX_TICK_MS, Math.min(options.intervalMs, options.retryMs ?? 1000) / 4));
  }

  /** Checks `target` now and then periodically, replacing whatever was watched for `name`. */
  checkNow(name: string, target: ProbeTarget): void {
    if (this.closed) return;
    const watch: Watch = { name, target, failures: 0 };
    this.watches.set(name, watch);
    void this.run(watch);
  }

  /** Stops checking `name` (it went offline); a check in flight is ignored when it ends. */
  stop(name: string): void {
    this.watches.delete(name);
  }

  get watching(): number {
    return this.watches.size;
  }

  close(): void {
    this.closed = true;
    this.watches.clear();
    this.due.clear();
    this.stopSweeper?.();
    this.stopSweeper = undefined;
  }

  private isCurrent(watch: Watch): boolean {
    return this.watches.get(watch.name) === watch;
  }

  private async run(watch: Watch): Promise<void> {
    await this.acquireSlot();
    const started = this.clock.now();
    try {
      if (!this.isCurrent(watch)) return;
      const result = await this.checkOnce(watch);
      watch.failures = result.reachable ? 0 : watch.failures + 1;
      if (this.isCurrent(watch)) this.options.onResult(watch.name, watch.target, result);
    } catch (error) {
      this.options.logger.error({ err: (error as Error).message, agent: watch.name }, 'reachability check failed unexpectedly');
    } finally {
      this.releaseSlot();
    }
    if (!this.isCurrent(watch)) return;
    const { intervalMs, retryMs = 1000 } = this.options;
    // up to a tenth early, at random: agents that registered together (a rendezvous restart) drift apart
    // instead of being checked in one burst every interval for good; and a tick early, as the sweep may
    // start it up to a tick late
    const period = watch.failures === 0 ? intervalMs * (1 - CHECK_JITTER * this.random()) - this.tickMs : Math.min(intervalMs, retryMs * 2 ** (watch.failures - 1));
    this.schedule(watch, started + period);
  }

  private schedule(watch: Watch, dueAt: number): void {
    if (this.stopSweeper === undefined) {
      this.nextTick = Math.floor(this.clock.now() / this.tickMs);
      this.stopSweeper = this.clock.repeat(this.tickMs, () => this.sweep());
    }
    const tick = Math.max(this.nextTick, Math.ceil(dueAt / this.tickMs));
    const slot = this.due.get(tick);
    if (slot) slot.push(watch);
    else this.due.set(tick, [watch]);
  }

  /** Starts the checks of every tick that has begun. */
  private sweep(): void {
    const now = Math.floor(this.clock.now() / this.tickMs);
    for (; this.nextTick <= now; this.nextTick++) {
      const slot = this.due.get(this.nextTick);
      if (!slot) continue;
      this.due.delete(this.nextTick);
      for (const watch of slot) if (this.isCurrent(watch)) void this.run(watch);
    }
    if (this.due.size === 0) {
      // nothing left to wait for: checks in flight arm it again when they end
      this.stopSweeper?.();
      this.stopSweeper = undefined;
    }
  }

  private async checkOnce(watch: Watch): Promise<ProbeResult> {
    const { timeoutMs } = this.options;
    const result = await this.probe(watch.target, timeoutMs);
    return result.reason === 'tls error' && this.fallback ? this.fallback(watch.target, timeoutMs) : result;
  }

  private acquireSlot(): Promise<void> {
    if (this.running < (this.options.maxConcurrent ?? 64)) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  /** Hands the slot to the next waiting check, or frees it. */
  private releaseSlot(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}
