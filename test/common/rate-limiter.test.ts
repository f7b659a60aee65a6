import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteRateLimiter } from '../../src/common/rate-limiter.js';

/** A clock the test moves by hand. */
function fakeClock(startMs = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let nowMs = startMs;
  return { now: () => nowMs, advance: (ms) => void (nowMs += ms) };
}

test('a burst passes at once; the byte after it asks for a pause of debt / rate', () => {
  // burst: a quarter second of traffic, at least 64 KiB
  const cases: [rate: number, burst: number][] = [
    [1_000_000, 250_000],
    [20_000_000, 5_000_000],
    [10_000, 65_536],
    [262_144, 65_536],
  ];
  for (const [rate, burst] of cases) {
    const clock = fakeClock();
    const limiter = new ByteRateLimiter(rate, clock.now);
    assert.equal(limiter.spend(burst), 0, `${rate}: the whole burst at once`);
    assert.equal(limiter.spend(1), Math.ceil(1000 / rate), `${rate}: one byte over`);
  }
});

test('the pause is the debt divided by the rate, rounded up to whole ms', () => {
  const rate = 1_000_000;
  const cases: [overBurst: number, pauseMs: number][] = [
    [0, 0],
    [1, 1],
    [1000, 1],
    [1001, 2],
    [100_000, 100],
    [2_500_000, 2500],
  ];
  for (const [overBurst, pauseMs] of cases) {
    const clock = fakeClock();
    const limiter = new ByteRateLimiter(rate, clock.now);
    assert.equal(limiter.spend(250_000 + overBurst), pauseMs, `${overBurst} bytes over the burst`);
  }
  // debt adds up across calls
  const clock = fakeClock();
  const limiter = new ByteRateLimiter(rate, clock.now);
  assert.equal(limiter.spend(250_000), 0);
  assert.equal(limiter.spend(30_000), 30);
  assert.equal(limiter.spend(30_000), 60);
});

test('tokens refill at the rate over time: waiting out the pause clears the debt, not a ms sooner', () => {
  const clock = fakeClock();
  const limiter = new ByteRateLimiter(1_000_000, clock.now);
  assert.equal(limiter.spend(350_000), 100);
  clock.advance(99);
  assert.equal(limiter.spend(0), 1, 'one ms of debt left');
  clock.advance(1);
  assert.equal(limiter.spend(0), 0, 'debt paid');
  clock.advance(50);
  assert.equal(limiter.spend(50_000), 0, '50 ms earn 50 kB');
  assert.equal(limiter.spend(1_000), 1, 'and no more');
});

test('idle time never saves up more than the burst', () => {
  for (const idleMs of [250, 1000, 3_600_000]) {
    const clock = fakeClock();
    const limiter = new ByteRateLimiter(1_000_000, clock.now);
    assert.equal(limiter.spend(250_000), 0);
    clock.advance(idleMs);
    assert.equal(limiter.spend(250_000), 0, `after ${idleMs} ms the burst is back`);
    assert.equal(limiter.spend(10_000), 10, `after ${idleMs} ms: only the burst, nothing saved beyond it`);
  }
});

/** A sender that reads again as soon as the limiter lets it (at the earliest 1 ms later), for `seconds`. */
function simulate(rate: number, chunk: number, seconds: number): { admitted: number; firstPauseAt: number; admittedBeforePause: number } {
  const clock = fakeClock();
  const start = clock.now();
  const limiter = new ByteRateLimiter(rate, clock.now);
  let admitted = 0;
  let firstPauseAt = -1;
  let admittedBeforePause = 0;
  while (clock.now() - start < seconds * 1000) {
    admitted += chunk;
    const pauseMs = limiter.spend(chunk);
    if (pauseMs > 0 && firstPauseAt < 0) {
      firstPauseAt = clock.now() - start;
      admittedBeforePause = admitted;
    }
    clock.advance(Math.max(pauseMs, 1));
  }
  return { admitted, firstPauseAt, admittedBeforePause };
}

test('over a simulated 10 s a greedy sender gets the configured rate within 5%', () => {
  // from 256 kB/s up the burst is a quarter second, 2.5% of 10 s
  const cases: [rate: number, chunk: number][] = [
    [1_000_000, 16_384],
    [1_000_000, 65_536],
    [12_500_000, 65_536],
    [300_000, 1_400],
    [125_000_000, 262_144], // chunks big enough for 1 ms steps to reach the rate
  ];
  for (const [rate, chunk] of cases) {
    const { admitted } = simulate(rate, chunk, 10);
    const average = admitted / 10;
    assert.ok(Math.abs(average - rate) <= rate * 0.05, `rate ${rate}, chunks of ${chunk}: average ${average.toFixed(0)} B/s`);
  }
});

test('slow rates: after the 64 KiB burst the sender gets the configured rate within 5%, and never more than rate × time + burst', () => {
  const cases: [rate: number, chunk: number][] = [
    [50_000, 1_400],
    [10_000, 16_384],
    [2_000, 512],
  ];
  for (const [rate, chunk] of cases) {
    const seconds = 60;
    const { admitted, firstPauseAt, admittedBeforePause } = simulate(rate, chunk, seconds);
    assert.ok(admittedBeforePause >= 65_536 && admittedBeforePause <= 65_536 + chunk + rate * (firstPauseAt / 1000), `rate ${rate}: burst ${admittedBeforePause}`);
    assert.ok(admitted <= rate * seconds + 65_536 + chunk, `rate ${rate}: ${admitted} bytes in ${seconds} s`);
    const steady = (admitted - admittedBeforePause) / (seconds - firstPauseAt / 1000);
    assert.ok(Math.abs(steady - rate) <= rate * 0.05, `rate ${rate}, chunks of ${chunk}: steady ${steady.toFixed(0)} B/s`);
  }
});
