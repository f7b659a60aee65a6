import { test } from 'node:test';
import assert from 'node:assert/strict';
import { heartbeatStale, missedRun } from '../../src/agent/wall-clock.js';

test('missedRun: a planned run counts as missed only once the wall clock is past it by the grace', () => {
  const planned = Date.parse('2026-03-01T04:20:00Z');
  const cases: Array<[nowIso: string, graceMs: number, missed: boolean]> = [
    ['2026-03-01T03:00:00Z', 60_000, false], // before the run
    ['2026-03-01T04:20:30Z', 60_000, false], // the cron timer may still be firing
    ['2026-03-01T04:21:01Z', 60_000, true], // past the grace: it did not fire
    ['2026-03-01T09:00:00Z', 60_000, true], // woke hours later
    ['2026-03-01T04:20:05Z', 1_000, true],
  ];
  for (const [nowIso, graceMs, missed] of cases) {
    assert.equal(missedRun({ plannedMs: planned, nowMs: Date.parse(nowIso), graceMs }), missed, nowIso);
  }
});

test('heartbeatStale: stale after three silent heartbeat intervals, or with no reply at all', () => {
  const now = 1_000_000;
  const cases: Array<[last: number | undefined, heartbeatMs: number, stale: boolean]> = [
    [now - 1_000, 25_000, false],
    [now - 75_000, 25_000, false],
    [now - 75_001, 25_000, true],
    [now - 3_600_000, 25_000, true], // slept an hour
    [undefined, 25_000, true],
  ];
  for (const [last, heartbeatMs, stale] of cases) {
    assert.equal(heartbeatStale({ lastHeartbeatMs: last, nowMs: now, heartbeatMs }), stale, `${last} / ${heartbeatMs}`);
  }
});
