import assert from 'node:assert/strict';
import { captureLogs } from '../helpers/logs.js';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseRegistry, Registry, serializeRegistry, type AgentRecord } from '../../src/rendezvous/registry.js';

const FP_A = Array.from({ length: 32 }, () => 'AA').join(':');
const FP_B = Array.from({ length: 32 }, () => 'BB').join(':');
const T0 = Date.parse('2030-01-01T04:00:00.000Z');

const scratch: string[] = [];
after(() => Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true }))));

async function registryFile(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-registry-'));
  scratch.push(dir);
  return join(dir, 'state', 'registry.json');
}

/** A registry on a clock the test moves: `at(seconds)` sets the time to T0 + seconds. */
async function openAt(file: string, agents = ['home', 'cabin'], logger = captureLogs().logger) {
  let nowMs = T0;
  const registry = await Registry.open({ file, agents, logger, now: () => new Date(nowMs), writeDelayMs: 10 });
  return { registry, at: (seconds: number) => { nowMs = T0 + seconds * 1000; } };
}

const iso = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();

test('registry transitions: register, heartbeat, address change, certificate change, offline', async () => {
  const { registry, at } = await openAt(await registryFile());
  const addressA = { ip: '198.51.100.2', port: 20001 };
  const addressB = { ip: '198.51.100.3', port: 25007 };
  type Step = [seconds: number, action: () => unknown, expected: Partial<AgentRecord>, outcome?: unknown];
  const steps: Step[] = [
    [0, () => undefined, { online: false, addressChanges: 0, reachability: { state: 'unknown' } }],
    [1, () => registry.register('home', { observed: addressA, fingerprint: FP_A }),
      { online: true, publicAddress: addressA, since: iso(1), lastHeartbeat: iso(1), addressChanges: 0, fingerprint: FP_A },
      { addressChanged: false }],
    [2, () => registry.recordReachability('home', { address: addressA, fingerprint: FP_A }, { reachable: true, checkedAt: new Date(T0 + 2000) }),
      { reachability: { state: 'reachable', checkedAt: iso(2) } }, true],
    [6, () => registry.heartbeat('home'), { lastHeartbeat: iso(6), since: iso(1), reachability: { state: 'reachable', checkedAt: iso(2) } }],
    [9, () => registry.markOffline('home'), { online: false, offlineSince: iso(9), publicAddress: addressA }],
    // same address again: "since" stays, reachability is kept (same address, same certificate)
    [12, () => registry.register('home', { observed: addressA, fingerprint: FP_A }),
      { online: true, since: iso(1), offlineSince: undefined, addressChanges: 0, reachability: { state: 'reachable', checkedAt: iso(2) } },
      { addressChanged: false }],
    [20, () => registry.register('home', { observed: addressB, fingerprint: FP_A, publicHost: 'home.example.com' }),
      { publicAddress: addressB, since: iso(20), addressChanges: 1, reachability: { state: 'unknown' }, publicHost: 'home.example.com' },
      { addressChanged: true, previousAddress: addressA }],
    [21, () => registry.recordReachability('home', { address: addressB, fingerprint: FP_A }, { reachable: false, reason: 'timeout', checkedAt: new Date(T0 + 21_000) }),
      { reachability: { state: 'unreachable', reason: 'timeout', checkedAt: iso(21) } }, true],
    // a new certificate at the same address: the old result proves nothing about it
    [25, () => registry.register('home', { observed: addressB, fingerprint: FP_B }),
      { fingerprint: FP_B, addressChanges: 1, publicHost: undefined, reachability: { state: 'unknown' } }, { addressChanged: false }],
  ];
  for (const [seconds, action, expected, outcome] of steps) {
    at(seconds);
    const result = action();
    const record = registry.get('home')!;
    for (const [key, value] of Object.entries(expected)) {
      assert.deepEqual(record[key as keyof AgentRecord], value, `at ${seconds}s: ${key}`);
    }
    if (outcome !== undefined) {
      const actual = typeof result === 'object' && result !== null && 'addressChanged' in result
        ? { addressChanged: result.addressChanged, ...('previousAddress' in result ? { previousAddress: result.previousAddress } : {}) }
        : result;
      assert.deepEqual(actual, outcome, `outcome at ${seconds}s`);
    }
  }
  assert.equal(registry.get('cabin')!.online, false, 'other agents are untouched');
  assert.equal(registry.get('stranger'), undefined, 'only configured agents have records');
  assert.throws(() => registry.register('stranger', { observed: addressA, fingerprint: FP_A }), /not configured/);
  await registry.close();
});

test('a reachability result for an address or certificate the agent has left is dropped', async () => {
  const { registry } = await openAt(await registryFile());
  const old = { ip: '198.51.100.2', port: 20001 };
  registry.register('home', { observed: old, fingerprint: FP_A });
  registry.register('home', { observed: { ip: '198.51.100.2', port: 25001 }, fingerprint: FP_A });
  const checkedAt = new Date(T0);
  assert.equal(registry.recordReachability('home', { address: old, fingerprint: FP_A }, { reachable: true, checkedAt }), false);
  assert.equal(registry.recordReachability('home', { address: { ip: '198.51.100.2', port: 25001 }, fingerprint: FP_B }, { reachable: true, checkedAt }), false);
  assert.deepEqual(registry.get('home')!.reachability, { state: 'unknown' });
  await registry.close();
});

test('the registry is written by itself within the write delay, atomically and private (0600)', async () => {
  const file = await registryFile();
  const { registry } = await openAt(file);
  registry.register('home', { observed: { ip: '2001:db8::7', port: 443 }, fingerprint: FP_A });
  let text: string | undefined;
  for (let waited = 0; text === undefined && waited < 2000; waited += 20) {
    await sleep(20);
    text = await readFile(file, 'utf8').catch(() => undefined);
  }
  assert.ok(text, 'registry.json was not written');
  const parsed = parseRegistry(text);
  assert.ok(parsed.ok);
  assert.deepEqual(parsed.value.find((record) => record.name === 'home')!.publicAddress, { ip: '2001:db8::7', port: 443 });
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  await registry.close();
});

test('a restart restores the last known state, offline until each agent reconnects', async () => {
  const file = await registryFile();
  const first = await openAt(file, ['home', 'cabin', 'retired']);
  first.at(1);
  first.registry.register('home', { observed: { ip: '198.51.100.2', port: 20001 }, fingerprint: FP_A, publicHost: 'home.example.com' });
  first.registry.register('home', { observed: { ip: '198.51.100.2', port: 20002 }, fingerprint: FP_A });
  first.registry.recordReachability('home', { address: { ip: '198.51.100.2', port: 20002 }, fingerprint: FP_A }, { reachable: false, reason: 'refused', checkedAt: new Date(T0 + 1000) });
  first.at(5);
  first.registry.heartbeat('home');
  first.registry.register('retired', { observed: { ip: '192.0.2.1', port: 1 }, fingerprint: FP_A });
  await first.registry.close(); // "home" was still online when the rendezvous stopped

  const { logger, lines } = captureLogs();
  const second = await openAt(file, ['home', 'cabin', 'newcomer'], logger);
  const home = second.registry.get('home')!;
  assert.equal(home.online, false);
  assert.equal(home.offlineSince, iso(5), 'offline since its last heartbeat');
  assert.deepEqual(home.publicAddress, { ip: '198.51.100.2', port: 20002 });
  assert.equal(home.since, iso(1));
  assert.equal(home.addressChanges, 1);
  assert.deepEqual(home.reachability, { state: 'unreachable', reason: 'refused', checkedAt: iso(1) });
  assert.equal(home.fingerprint, FP_A);
  assert.equal(home.publicHost, undefined);
  assert.deepEqual(second.registry.all().map((record) => record.name), ['home', 'cabin', 'newcomer']);
  assert.ok(lines.some((line) => line.agent === 'retired' && /no longer configured/.test(String(line.msg))));
  // reconnecting from the same address keeps "since" and counts no change
  second.registry.register('home', { observed: { ip: '198.51.100.2', port: 20002 }, fingerprint: FP_A });
  assert.equal(second.registry.get('home')!.addressChanges, 1);
  await second.registry.close();
});

test('a damaged registry.json is reported and the registry starts empty', async () => {
  for (const text of ['{"version":1,"agents":[{"name":"home"', '{"version":2,"agents":[]}', '{"version":1,"agents":[{"name":"home","online":true}]}']) {
    const file = await registryFile();
    const first = await openAt(file);
    await first.registry.close();
    await writeFile(file, text);
    const { logger, lines } = captureLogs();
    const { registry } = await openAt(file, ['home'], logger);
    assert.deepEqual(registry.get('home'), { name: 'home', online: false, reachability: { state: 'unknown' }, addressChanges: 0 });
    assert.ok(lines.some((line) => line.level === 40 && /registry not restored, starting empty/.test(String(line.msg))), text);
    await registry.close();
  }
});

test('parseRegistry accepts what serializeRegistry writes and rejects malformed records', () => {
  const record: AgentRecord = {
    name: 'home', online: false, publicAddress: { ip: '203.0.113.9', port: 1 }, since: iso(0), lastHeartbeat: iso(1),
    offlineSince: iso(2), reachability: { state: 'unreachable', reason: 'wrong certificate', checkedAt: iso(1) }, addressChanges: 3, fingerprint: FP_A,
  };
  assert.deepEqual(parseRegistry(serializeRegistry([record])), { ok: true, value: [record] });
  const broken: Partial<Record<keyof AgentRecord, unknown>>[] = [
    { addressChanges: -1 },
    { publicAddress: { ip: '::ffff:203.0.113.9', port: 1 } },
    { publicAddress: { ip: '203.0.113.9', port: 0 } },
    { reachability: { state: 'maybe' } },
    { since: 'yesterday' },
    { online: 'yes' },
  ];
  for (const change of broken) {
    const result = parseRegistry(serializeRegistry([{ ...record, ...change } as AgentRecord]));
    assert.equal(result.ok, false, JSON.stringify(change));
  }
});
