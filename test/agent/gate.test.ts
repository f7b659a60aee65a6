import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createGate, type GateOptions } from '../../src/agent/gate.js';
import { parseCidr } from '../../src/common/cidr.js';
import { CidrSet } from '../../src/common/cidr-set.js';

/** A gate over a real CidrSet with `allow`, a hand-driven clock and captured log lines. */
function gateFixture(allow: string[], options: GateOptions = {}) {
  const set = new CidrSet(allow.map((cidr) => {
    const parsed = parseCidr(cidr);
    assert.ok(parsed.ok);
    return { cidr: parsed.value };
  }));
  const clock = { now: 1_000_000 };
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const policy = { allows: (address: string, nowMs = clock.now) => set.match(address, nowMs) !== undefined };
  const gate = createGate(policy, logger, { now: () => clock.now, ...options });
  return { gate, clock, logs };
}

const deniedLines = (logs: Record<string, unknown>[]) => logs.filter((line) => line.msg === 'connection denied: address not in whitelist');
const summaries = (logs: Record<string, unknown>[]) => logs.filter((line) => /connections denied since last report$/.test(String(line.msg)));

test('the gate admits whitelisted addresses and counts both outcomes', (t) => {
  const { gate, logs } = gateFixture(['127.0.0.1/32', '2001:db8::/32']);
  t.after(() => gate.close());
  const cases: [address: string | undefined, admitted: boolean][] = [
    ['127.0.0.1', true],
    ['::ffff:127.0.0.1', true],
    ['2001:db8::42', true],
    ['127.0.0.2', false],
    ['2001:db9::1', false],
    ['', false],
    [undefined, false], // a socket that closed before accept reports no address
  ];
  for (const [address, admitted] of cases) assert.equal(gate.admit(address), admitted, String(address));
  assert.deepEqual(gate.stats(), { admitted: 3, denied: 4 });
  assert.equal(logs.filter((line) => line.client === '127.0.0.1').length, 0, 'admitted connections are not logged by the gate');
});

test('a flood from one source logs one line per interval, with the count it held back', (t) => {
  const { gate, clock, logs } = gateFixture(['127.0.0.1/32'], { perSourceIntervalMs: 60_000, summaryIntervalMs: 3_600_000 });
  t.after(() => gate.close());
  for (let i = 0; i < 1000; i++) {
    assert.equal(gate.admit(i % 2 === 0 ? '203.0.113.5' : '::ffff:203.0.113.5'), false);
    clock.now += 10;
  }
  assert.deepEqual(deniedLines(logs).map((line) => line.client), ['203.0.113.5'], 'the mapped form is the same source');
  clock.now += 60_000;
  gate.admit('203.0.113.5');
  const lines = deniedLines(logs);
  assert.equal(lines.length, 2);
  assert.equal(lines[1]!.deniedSinceLastLine, 1000); // 999 held back plus this one
  assert.deepEqual(gate.stats(), { admitted: 0, denied: 1001 });
});

test('a periodic summary counts denials since the last report, and says nothing when there were none', (t) => {
  const { gate, clock, logs } = gateFixture(['127.0.0.1/32'], { summaryIntervalMs: 10_000 });
  t.after(() => gate.close());
  for (let i = 0; i < 25; i++) gate.admit(`198.51.100.${i}`);
  assert.equal(summaries(logs).length, 0);
  clock.now += 10_000;
  gate.admit('198.51.100.1');
  assert.deepEqual(summaries(logs).map((line) => [line.msg, line.denied]), [['26 connections denied since last report', 26]]);

  clock.now += 10_000;
  gate.admit('127.0.0.1');
  gate.close();
  assert.equal(summaries(logs).length, 1, 'no denials, no summary');
});

test('past the tracked-source limit denials are only counted, so a spread-out scan cannot flood the log', (t) => {
  const { gate, logs } = gateFixture([], { maxTrackedSources: 3, summaryIntervalMs: 3_600_000 });
  t.after(() => gate.close());
  for (let i = 0; i < 500; i++) gate.admit(`2001:db8::${i.toString(16)}`);
  assert.equal(deniedLines(logs).length, 3);
  gate.close();
  assert.deepEqual(summaries(logs).map((line) => line.denied), [500]);
});
