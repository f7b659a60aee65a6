import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scheduleReregister } from '../../src/agent/schedule.js';
import { waitFor } from '../helpers/wait.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('the daily job runs once at once when the wall clock jumps past its planned time (sleep), then re-arms', async () => {
  let clockOffsetMs = 0;
  const now = (): number => Date.now() + clockOffsetMs;
  const runs: number[] = [];
  const missed: Date[] = [];
  // once a year, so the real cron timer never fires during the test: only the guard can run it
  const job = scheduleReregister({
    cronTime: '0 20 4 1 1 *', timeZone: 'UTC', maxJitterMs: 0, run: () => runs.push(now()),
    onMissedRun: (planned) => missed.push(planned), now, checkEveryMs: 20,
  });
  try {
    const planned = job.nextRun();
    assert.equal(planned.toISOString().slice(4), '-01-01T04:20:00.000Z');
    await sleep(150);
    assert.deepEqual(runs, [], 'no run before the planned time');

    clockOffsetMs = planned.getTime() - Date.now() + 5 * 60_000; // the machine slept until 04:25
    await waitFor('the guard to run the missed job', () => runs.length > 0);
    await sleep(150);
    assert.equal(runs.length, 1, 'the missed run happens once, not on every check');
    assert.deepEqual(missed, [planned]);
    assert.equal(job.nextRun().getUTCFullYear(), planned.getUTCFullYear() + 1, 'the next run is a year later');
    assert.ok(job.nextRun().getTime() > now());
  } finally {
    job.stop();
  }
});
