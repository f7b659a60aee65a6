import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createConnectionLimits, fitConnectionsToFdLimit, RESERVED_FDS } from '../../src/agent/connection-limits.js';

/** Limits with a hand-driven clock and captured log lines. */
function limitsFixture(connectionsPerAddress: number, connections: number, fdLimit?: number) {
  const clock = { now: 1_000_000 };
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const limits = createConnectionLimits({ connectionsPerAddress, connections }, logger, { fdLimit, now: () => clock.now });
  return { limits, clock, logs };
}

const refusals = (logs: Record<string, unknown>[]) => logs.filter((line) => /^connection refused: too many open connections/.test(String(line.msg)));

test('one address gets connectionsPerAddress; others are not affected; a close frees a place', () => {
  const { limits } = limitsFixture(3, 100);
  for (let i = 0; i < 3; i++) assert.equal(limits.open('192.0.2.1'), true);
  assert.equal(limits.open('192.0.2.1'), false);
  assert.equal(limits.open('192.0.2.2'), true, 'another address has its own count');
  limits.close('192.0.2.1');
  assert.equal(limits.open('192.0.2.1'), true);
  assert.deepEqual(limits.stats(), { open: 4, addresses: 2, refused: 1 });
  for (let i = 0; i < 3; i++) limits.close('192.0.2.1');
  limits.close('192.0.2.2');
  limits.close('192.0.2.2'); // a stray close is ignored, never a negative count
  assert.deepEqual(limits.stats(), { open: 0, addresses: 0, refused: 1 });
});

test('the global cap counts every address; a refused connection is not counted in', () => {
  const { limits } = limitsFixture(10, 5);
  for (let i = 0; i < 5; i++) assert.equal(limits.open(`198.51.100.${i}`), true);
  assert.equal(limits.open('198.51.100.99'), false);
  assert.equal(limits.open('198.51.100.0'), false);
  limits.close('198.51.100.3');
  assert.equal(limits.open('198.51.100.99'), true);
  assert.deepEqual(limits.stats(), { open: 5, addresses: 5, refused: 2 });
});

test('refusals log one line per address (and one for the cap) per minute, naming the address and the key', () => {
  const { limits, clock, logs } = limitsFixture(2, 6);
  for (let i = 0; i < 1000; i++) limits.open('203.0.113.5');
  // .10, .11, .12, .10 fill the cap; .11 meets the cap first, then .10 its own limit
  for (let i = 0; i < 1000; i++) limits.open(`203.0.113.${10 + (i % 3)}`);
  const lines = refusals(logs);
  assert.deepEqual(lines.map((line) => [line.client, line.setting, line.limit, line.level]), [
    ['203.0.113.5', 'limits.connectionsPerAddress', 2, 40],
    ['203.0.113.11', 'limits.connections', 6, 40],
    ['203.0.113.10', 'limits.connectionsPerAddress', 2, 40],
  ]);
  assert.equal(lines[0]!.msg, 'connection refused: too many open connections from one address (limits.connectionsPerAddress = 2)');
  assert.equal(lines[1]!.msg, 'connection refused: too many open connections in all (limits.connections = 6)');
  clock.now += 60_000;
  limits.open('203.0.113.5');
  assert.equal(refusals(logs).at(-1)!.refusedSinceLastLine, 998, '2 admitted, 1 logged, 997 held back, plus this one');
});

test('the global cap is lowered to fit the open-file limit, two descriptors a connection, and says so', () => {
  assert.equal(fitConnectionsToFdLimit(4096, undefined), 4096, 'unknown limit: as configured');
  assert.equal(fitConnectionsToFdLimit(4096, 1_048_576), 4096);
  assert.equal(fitConnectionsToFdLimit(4096, 1024), (1024 - RESERVED_FDS) / 2);
  assert.equal(fitConnectionsToFdLimit(4096, 10), 1, 'never 0: the agent still serves one');
  const { limits, logs } = limitsFixture(256, 4096, 1024);
  const warning = logs.find((line) => line.setting === 'limits.connections');
  assert.equal(warning?.msg, 'limits.connections lowered to 480 to fit the open-file limit of 1024 (ulimit -n); raise that (LimitNOFILE= in the service) to allow more');
  for (let i = 0; i < 480; i++) assert.equal(limits.open(`10.0.${i >> 8}.${i & 255}`), true);
  assert.equal(limits.open('10.9.9.9'), false);
});
