import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { backoffDelay } from '../../src/common/backoff.js';
import { PunchedPort, localAddressToward } from '../../src/agent/punch.js';
import { PublicAddressTracker } from '../../src/agent/public-address.js';
import { formatStatus, type AgentStatus } from '../../src/agent/status.js';
import { scheduleReregister } from '../../src/agent/schedule.js';

test('backoff: first retry at once, then doubling with jitter, capped at 30 s', () => {
  const opts = { baseMs: 1000, capMs: 30_000 };
  assert.equal(backoffDelay(0, { ...opts, random: () => 0.99 }), 0);
  const table: [number, number, number][] = [[1, 500, 1000], [2, 1000, 2000], [3, 2000, 4000], [5, 8000, 16_000], [6, 15_000, 30_000], [40, 15_000, 30_000]];
  for (const [attempt, low, high] of table) {
    assert.equal(backoffDelay(attempt, { ...opts, random: () => 0 }), low, `attempt ${attempt} low`);
    assert.equal(backoffDelay(attempt, { ...opts, random: () => 0.999999 }), high, `attempt ${attempt} high`);
  }
});

test('public address tracker: first address is not a change, a new one is, reachability resets', () => {
  let clock = new Date('2026-11-25T04:00:00Z');
  const tracker = new PublicAddressTracker(() => clock);
  const changes: string[] = [];
  tracker.on('change', (previous, current) => changes.push(`${previous?.port ?? '-'}>${current.port}`));
  tracker.observe({ ip: '198.51.100.2', port: 20001 });
  tracker.recordProbe({ reachable: true, checkedAt: clock.toISOString() });
  clock = new Date('2026-11-25T04:00:05Z');
  tracker.observe({ ip: '198.51.100.2', port: 20001 });
  assert.equal(tracker.changes, 0);
  assert.equal(tracker.reachability?.reachable, true);
  assert.equal(tracker.lastHeartbeat?.toISOString(), '2026-11-25T04:00:05.000Z');
  clock = new Date('2026-11-25T04:20:00Z');
  tracker.observe({ ip: '198.51.100.9', port: 25003 });
  assert.deepEqual(changes, ['->20001', '20001>25003']);
  assert.equal(tracker.changes, 1);
  assert.equal(tracker.since?.toISOString(), '2026-11-25T04:20:00.000Z');
  assert.equal(tracker.reachability, undefined, 'a verdict on the old address says nothing about the new one');
});

test('status is printed one fact a line, with reasons and ages', () => {
  const status: AgentStatus = {
    agent: 'home', localPort: 25305, rendezvous: '203.0.113.10:7000', connected: true,
    publicAddress: { ip: '198.51.100.2', port: 20001 }, since: '2026-11-25T04:00:00.000Z',
    reachable: false, reachableReason: 'timeout', checkedAt: '2026-11-25T04:00:01.000Z',
    lastHeartbeat: '2026-11-25T04:59:58.000Z', addressChanges: 2, updatedAt: '2026-11-25T05:00:00.000Z', pid: 42,
  };
  const text = formatStatus(status, new Date('2026-11-25T05:00:00Z'));
  assert.match(text, /^agent\s+home$/m);
  assert.match(text, /^public address\s+198\.51\.100\.2:20001 since 2026-11-25T04:00:00\.000Z \(1h ago\)$/m);
  assert.match(text, /^reachable\s+no \(timeout\)$/m);
  assert.match(text, /^last heartbeat\s+2s ago$/m);
  assert.match(text, /^address changes\s+2$/m);
  assert.match(formatStatus({ ...status, rendezvous: undefined, publicAddress: undefined, reachable: undefined }, new Date()), /rendezvous\s+not configured \(LAN only\)[\s\S]*reachable\s+not checked yet/);
});

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.on('error', reject);
  });
}

test('the punched port connects out from P, then listens on P; reconnects right after a close work', async (t) => {
  const seen: { port: number }[] = [];
  const rendezvous = createServer((socket) => { seen.push({ port: socket.remotePort! }); socket.on('error', () => undefined); });
  const serverPort = await listen(rendezvous);
  const accepted: Socket[] = [];
  const punched = new PunchedPort({
    listen: { host: '127.0.0.1', port: 0 },
    server: { host: '127.0.0.1', port: serverPort },
    onConnection: (socket) => { accepted.push(socket); socket.end('hello from P'); },
    onListenerError: (error) => assert.fail(error),
    connectTimeoutMs: 2000,
  });
  t.after(async () => { await punched.close(); rendezvous.close(); });

  const first = await punched.open();
  assert.ok(first.ok);
  const p = punched.port;
  assert.equal(first.value.localPort, p, 'the control connection leaves from P');

  const client = await connectTo(p);
  const greeting = await new Promise<string>((resolve) => { let text = ''; client.on('data', (d) => { text += d; }); client.on('end', () => resolve(text)); });
  assert.equal(greeting, 'hello from P', 'the listener on P accepts while the outbound connection from P is up');

  // a reconnect right after the agent closes: reset, so no TIME_WAIT blocks P
  for (let round = 0; round < 5; round++) {
    first.value.resetAndDestroy();
    const again = await punched.open();
    assert.ok(again.ok, `round ${round}: ${again.ok ? '' : again.error}`);
    assert.equal(again.value.localPort, p);
    again.value.resetAndDestroy();
  }
  assert.ok(seen.every((entry) => entry.port === p));
  assert.equal(seen.length, 6);
});

test('with the rendezvous down the listener on P still comes back, and the failure is a value', async (t) => {
  const probe = createServer();
  const deadPort = await listen(probe);
  await new Promise((resolve) => probe.close(resolve));
  const punched = new PunchedPort({
    listen: { host: '127.0.0.1', port: 0 },
    server: { host: '127.0.0.1', port: deadPort },
    onConnection: (socket) => socket.end('lan still works'),
    onListenerError: () => undefined,
    connectTimeoutMs: 2000,
  });
  t.after(() => punched.close());
  const result = await punched.open();
  assert.equal(result.ok, false);
  if (!result.ok) assert.match(result.error, /ECONNREFUSED/);
  const client = await connectTo(punched.port);
  const text = await new Promise<string>((resolve) => { let data = ''; client.on('data', (d) => { data += d; }); client.on('end', () => resolve(data)); });
  assert.equal(text, 'lan still works');
});

test('localAddressToward asks the routing table without sending anything', async () => {
  assert.equal(await localAddressToward('127.0.0.1'), '127.0.0.1');
});

test('the re-register job fires on its cron schedule in its time zone, after its random delay', async () => {
  const fired: number[] = [];
  const started = Date.now();
  const job = scheduleReregister({ cronTime: '* * * * * *', timeZone: 'Asia/Shanghai', maxJitterMs: 200, run: () => fired.push(Date.now()), random: () => 0.5 });
  try {
    const next = job.nextRun().getTime();
    assert.ok(next > started - 1000 && next <= started + 1000, 'an every-second schedule runs within a second');
    await new Promise((resolve) => setTimeout(resolve, 2300));
    assert.ok(fired.length >= 1, 'the job ran');
    // the random delay is half of maxJitterMs with random() = 0.5: never on the exact second
    assert.ok(fired.every((time) => time % 1000 >= 90), `runs at ${fired.map((time) => time % 1000).join(', ')} ms past the second`);
  } finally {
    job.stop();
  }
  const count = fired.length;
  await new Promise((resolve) => setTimeout(resolve, 1200));
  assert.equal(fired.length, count, 'a stopped job does not run again');
});
