import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import type { NetworkInterfaceInfo } from 'node:os';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { interfacesFingerprint, watchAddress } from '../src/agent/address-watch.js';
import { notifyReady } from '../src/common/notify.js';
import { scheduleReregister } from '../src/agent/schedule.js';
import { heartbeatStale, missedRun } from '../src/agent/wall-clock.js';
import { createLogger } from '../src/common/logger.js';
import { waitFor } from './helpers/wait.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

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

function iface(address: string, cidr: string, internal = false): NetworkInterfaceInfo {
  return { address, cidr, internal, family: 'IPv4', netmask: '255.255.255.0', mac: '00:00:00:00:00:00' };
}

test('interfacesFingerprint changes when a non-loopback address comes, goes or moves, not on reordering', () => {
  const base = { lo: [iface('127.0.0.1', '127.0.0.1/8', true)], eth0: [iface('192.168.1.10', '192.168.1.10/24')], ppp0: [iface('100.64.3.4', '100.64.3.4/32')] };
  const same = (a: NodeJS.Dict<NetworkInterfaceInfo[]>, b: NodeJS.Dict<NetworkInterfaceInfo[]>): boolean => interfacesFingerprint(a) === interfacesFingerprint(b);
  const cases: Array<[what: string, other: NodeJS.Dict<NetworkInterfaceInfo[]>, unchanged: boolean]> = [
    ['listed in another order', { ppp0: base.ppp0, eth0: base.eth0, lo: base.lo }, true],
    ['loopback gained an alias', { ...base, lo: [...base.lo, iface('127.0.0.2', '127.0.0.2/8', true)] }, true],
    ['PPPoE redial: new address', { ...base, ppp0: [iface('100.64.9.9', '100.64.9.9/32')] }, false],
    ['PPPoE link down', { lo: base.lo, eth0: base.eth0 }, false],
    ['new DHCP lease', { ...base, eth0: [iface('192.168.1.11', '192.168.1.11/24')] }, false],
    ['same address moved to another interface', { lo: base.lo, eth1: base.eth0, ppp0: base.ppp0 }, false],
  ];
  for (const [what, other, unchanged] of cases) assert.equal(same(base, other), unchanged, what);
});

test('the address watch re-registers when the interfaces change and when heartbeats go stale', async () => {
  let interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = { eth0: [iface('192.168.1.10', '192.168.1.10/24')] };
  let clockOffsetMs = 0;
  let connected = true;
  const lastHeartbeat = new Date();
  const reasons: string[] = [];
  const stop = watchAddress({
    reregister: (reason) => reasons.push(reason),
    connected: () => connected,
    lastHeartbeat: () => lastHeartbeat,
    heartbeatMs: 1000,
    readInterfaces: () => interfaces,
    now: () => Date.now() + clockOffsetMs,
    interfacePollMs: 20,
    recheckMs: 20,
  });
  try {
    await sleep(150);
    assert.deepEqual(reasons, [], 'nothing changed, heartbeats fresh');
    interfaces = { eth0: [iface('192.168.1.77', '192.168.1.77/24')] };
    await waitFor('the interface change', () => reasons.length > 0);
    await sleep(100);
    assert.deepEqual(reasons, ['network interfaces changed'], 'one re-register per change');

    connected = false;
    clockOffsetMs = 3_600_000; // woke from an hour of sleep
    await sleep(150);
    assert.equal(reasons.length, 1, 'a disconnected link is already retrying; no extra re-register');
    connected = true;
    await waitFor('the stale-heartbeat re-check', () => reasons.length > 1);
    assert.equal(reasons[1], 'public address re-check: heartbeat replies stale');
  } finally {
    stop();
  }
  const count = reasons.length;
  await sleep(100);
  assert.equal(reasons.length, count, 'a stopped watch does nothing');
});

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

/**
 * A stand-in for systemd-notify that records its calls, to see that none happens. The real one, with a real
 * notify socket, is exercised in daemon-always-on.test.ts.
 */
async function fakeSystemdNotify(): Promise<{ dir: string; calls: () => Promise<string[]> }> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-notify-'));
  const script = join(dir, 'systemd-notify');
  await writeFile(script, '#!/bin/sh\necho "$* NOTIFY_SOCKET=$NOTIFY_SOCKET" >> "$(dirname "$0")/calls"\n');
  await chmod(script, 0o755);
  const calls = (): Promise<string[]> => readFile(join(dir, 'calls'), 'utf8').then((text) => text.trim().split('\n'), () => []);
  return { dir, calls };
}

test('notifyReady runs systemd-notify --ready only under systemd (NOTIFY_SOCKET set)', async () => {
  const notify = await fakeSystemdNotify();
  const logger = createLogger({ level: 'silent' });
  const PATH = `${notify.dir}${delimiter}${process.env.PATH ?? ''}`;
  notifyReady(logger, { PATH });
  await sleep(300);
  assert.deepEqual(await notify.calls(), [], 'not under systemd: no call');
  notifyReady(logger, { PATH, NOTIFY_SOCKET: '/run/test-notify.sock' });
  await waitFor('the systemd-notify call', async () => (await notify.calls()).length > 0);
  assert.deepEqual(await notify.calls(), ['--ready NOTIFY_SOCKET=/run/test-notify.sock']);
});
