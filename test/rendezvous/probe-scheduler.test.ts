import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { ProbeScheduler, type SchedulerClock } from '../../src/rendezvous/probe-scheduler.js';
import type { ProbeResult, ProbeTarget } from '../../src/rendezvous/prober.js';

/** A clock moved by hand: the sweep's timer fires exactly when the clock passes it, never late. */
class ManualClock implements SchedulerClock {
  private nowMs = 1_000_000;
  private readonly timers = new Set<{ everyMs: number; nextMs: number; tick: () => void }>();

  now(): number {
    return this.nowMs;
  }

  repeat(ms: number, tick: () => void): () => void {
    const timer = { everyMs: ms, nextMs: this.nowMs + ms, tick };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  /** Moves time on by `ms`, firing each timer as it comes due and letting the checks it starts run. */
  async advance(ms: number): Promise<void> {
    const end = this.nowMs + ms;
    for (;;) {
      const next = [...this.timers].sort((a, b) => a.nextMs - b.nextMs)[0];
      if (!next || next.nextMs > end) break;
      this.nowMs = next.nextMs;
      next.nextMs += next.everyMs;
      next.tick();
      await settle();
    }
    this.nowMs = end;
    await settle();
  }
}

/** Lets the promises of checks that already finished run to their end. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

const target = (port: number): ProbeTarget => ({ address: { ip: '127.0.0.1', port }, fingerprint: 'AA' });
const logger = pino({ level: 'silent' });
const gaps = (times: number[]): number[] => times.slice(1).map((at, i) => at - times[i]!);

describe('ProbeScheduler', () => {
  test('checks at once, then again within every interval (up to a tenth and a tick early), and stops when told', async () => {
    for (const random of [0, 0.999]) {
      const clock = new ManualClock();
      const checkedAt: number[] = [];
      const results: string[] = [];
      const scheduler = new ProbeScheduler({
        intervalMs: 100, timeoutMs: 50, logger, clock, random: () => random,
        probe: async () => { checkedAt.push(clock.now()); return { reachable: true, checkedAt: new Date(clock.now()) }; },
        onResult: (name, probed) => results.push(`${name}@${probed.address.port}`),
      });
      scheduler.checkNow('home', target(1));
      await settle();
      await clock.advance(1_000);
      assert.equal(checkedAt[0], 1_000_000, 'the first check at once');
      assert.ok(checkedAt.length >= 10, `${checkedAt.length} checks in 1 s at a 100 ms interval`);
      for (const gap of gaps(checkedAt)) assert.ok(gap <= 100 && gap >= 100 * 0.9 - 25, `a gap of ${gap} ms (random ${random})`);
      assert.deepEqual(new Set(results), new Set(['home@1']));
      scheduler.stop('home');
      const stoppedAt = checkedAt.length;
      await clock.advance(1_000);
      assert.equal(checkedAt.length, stoppedAt, 'no check after stop');
      assert.equal(scheduler.watching, 0);
      scheduler.close();
    }
  });

  test('after a failure the next check comes sooner, backing off towards the interval; success restores the interval', async () => {
    const clock = new ManualClock();
    const checkedAt: number[] = [];
    let reachable = false;
    const scheduler = new ProbeScheduler({
      intervalMs: 10_000, retryMs: 40, timeoutMs: 50, logger, clock,
      probe: async () => {
        checkedAt.push(clock.now());
        return { reachable, ...(reachable ? {} : { reason: 'refused' as const }), checkedAt: new Date(clock.now()) };
      },
      onResult: () => undefined,
    });
    scheduler.checkNow('home', target(1));
    await settle();
    await clock.advance(300);
    assert.deepEqual(gaps(checkedAt), [40, 80, 160], 'retries after retryMs, then twice that, and so on');
    reachable = true;
    await clock.advance(320); // the retry 320 ms after the last failure succeeds
    const afterSuccess = checkedAt.length;
    assert.equal(afterSuccess, 5);
    await clock.advance(8_000);
    assert.equal(checkedAt.length, afterSuccess, 'back to the full interval after a success');
    await clock.advance(2_000);
    assert.equal(checkedAt.length, afterSuccess + 1, 'and checked again within it');
    scheduler.close();
  });

  test('a replaced target is checked no more: only the new one keeps its interval', async () => {
    const clock = new ManualClock();
    const checks: number[] = [];
    const scheduler = new ProbeScheduler({
      intervalMs: 100, timeoutMs: 50, logger, clock,
      probe: async (probed) => { checks.push(probed.address.port); return { reachable: true, checkedAt: new Date(clock.now()) }; },
      onResult: () => undefined,
    });
    scheduler.checkNow('home', target(1));
    await settle();
    await clock.advance(50); // port 1's next check is now waiting its turn
    scheduler.checkNow('home', target(2));
    await clock.advance(1_000);
    scheduler.close();
    assert.deepEqual(checks.filter((port) => port === 1), [1], 'port 1 only in its first check');
    assert.ok(checks.filter((port) => port === 2).length >= 10, 'port 2 every interval');
  });

  test('a new target overtakes a check in flight: the old result is dropped', async () => {
    const pending = new Map<number, (result: ProbeResult) => void>();
    const delivered: number[] = [];
    const scheduler = new ProbeScheduler({
      intervalMs: 60_000, timeoutMs: 50, logger, clock: new ManualClock(),
      probe: (probed) => new Promise((resolve) => pending.set(probed.address.port, resolve)),
      onResult: (_name, probed) => delivered.push(probed.address.port),
    });
    scheduler.checkNow('home', target(1));
    await settle();
    scheduler.checkNow('home', target(2)); // the address changed while the first check ran
    await settle();
    pending.get(2)!({ reachable: true, checkedAt: new Date() });
    pending.get(1)!({ reachable: false, reason: 'timeout', checkedAt: new Date() });
    await settle();
    assert.deepEqual(delivered, [2]);
    scheduler.close();
  });

  test('checks beyond maxConcurrent wait for a free slot and then run, first come first served', async () => {
    const clock = new ManualClock();
    const pending: Array<() => void> = [];
    const started: string[] = [];
    const scheduler = new ProbeScheduler({
      intervalMs: 60_000, timeoutMs: 50, logger, clock, maxConcurrent: 2,
      probe: (probed) => new Promise((resolve) => {
        started.push(String(probed.address.port));
        pending.push(() => resolve({ reachable: true, checkedAt: new Date(clock.now()) }));
      }),
      onResult: () => undefined,
    });
    for (const port of [1, 2, 3, 4]) scheduler.checkNow(`agent-${port}`, target(port));
    await settle();
    assert.deepEqual(started, ['1', '2']);
    pending.shift()!();
    await settle();
    assert.deepEqual(started, ['1', '2', '3']);
    pending.shift()!();
    pending.shift()!();
    await settle();
    assert.deepEqual(started, ['1', '2', '3', '4']);
    scheduler.close();
  });
});
