import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkPool, type WorkConnection, type WorkPoolOptions } from '../../src/rendezvous/work-pool.js';

let server: Server;
const accepted: Socket[] = [];
const sockets: Socket[] = [];

before(async () => {
  server = createServer((socket) => accepted.push(socket));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  server.close();
});

/** A loopback pair: `near` is the rendezvous's end (what goes into the pool), `far` the agent's. */
async function pair(): Promise<{ near: Socket; far: Socket; connection: WorkConnection }> {
  const far = connect((server.address() as { port: number }).port, '127.0.0.1');
  await once(far, 'connect');
  while (accepted.length === 0) await sleep(1);
  const near = accepted.shift()!;
  sockets.push(near, far);
  return { near, far, connection: { socket: near, key: Buffer.alloc(32, 1) } };
}

function pool(options: Partial<WorkPoolOptions> & { answer?: boolean } = {}): { pool: WorkPool; requests: number[] } {
  const requests: number[] = [];
  const { answer = true, ...rest } = options;
  const workPool = new WorkPool({ size: 2, maxIdle: 4, waitMs: 1000, request: (count) => (requests.push(count), answer), ...rest });
  return { pool: workPool, requests };
}

async function until(condition: () => boolean, what: string, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

test('fill() asks for size minus idle, and nothing when the pool is full', async () => {
  const cases: [size: number, idle: number, asked: number[]][] = [
    [3, 0, [3]],
    [3, 1, [2]],
    [3, 3, []],
    [2, 4, []], // more idle than size (up to maxIdle): nothing
    [0, 0, []],
  ];
  for (const [size, idle, asked] of cases) {
    const { pool: workPool, requests } = pool({ size, maxIdle: 4 });
    for (let index = 0; index < idle; index++) workPool.add((await pair()).connection);
    assert.equal(workPool.idleCount, idle);
    workPool.fill();
    assert.deepEqual(requests, asked, `size ${size}, idle ${idle}`);
    workPool.clear();
  }
});

test('take() gives an idle connection at once and asks for one replacement', async () => {
  const { pool: workPool, requests } = pool({ size: 2 });
  const first = await pair();
  const second = await pair();
  workPool.add(first.connection);
  workPool.add(second.connection);
  const taken = await workPool.take();
  assert.ok(taken === first.connection || taken === second.connection);
  assert.equal(taken.socket.destroyed, false);
  assert.equal(workPool.idleCount, 1);
  assert.deepEqual(requests, [1]);
  const next = await workPool.take();
  assert.ok(next !== undefined && next !== taken);
  assert.equal(workPool.idleCount, 0);
  assert.deepEqual(requests, [1, 1]);
  workPool.clear();
});

test('a taken connection is no longer watched: the agent\'s bytes on it are not a reason to drop it', async () => {
  const { pool: workPool } = pool();
  const { far, connection } = await pair();
  workPool.add(connection);
  const taken = (await workPool.take())!;
  far.write('x');
  await sleep(50);
  assert.equal(taken.socket.destroyed, false);
  workPool.clear();
  assert.equal(taken.socket.destroyed, false, 'clear() only closes idle ones');
});

test('bytes the agent sends on a taken connection wait until the user side reads them', async () => {
  const { pool: workPool } = pool();
  const { far, connection } = await pair();
  workPool.add(connection);
  const taken = (await workPool.take())!;
  far.write('early');
  await sleep(50);
  const chunks: Buffer[] = [];
  taken.socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  taken.socket.resume(); // a taken connection comes paused; its reader starts it, as splice's pipe does
  far.end('late');
  await once(taken.socket, 'end');
  assert.equal(Buffer.concat(chunks).toString(), 'earlylate');
});

test('with none idle, take() waits for add() and resolves with that connection', async () => {
  const { pool: workPool, requests } = pool({ waitMs: 2000 });
  const started = Date.now();
  const waiting = workPool.take();
  assert.deepEqual(requests, [1], 'asks the agent for one');
  const { connection } = await pair();
  workPool.add(connection);
  assert.equal(await waiting, connection);
  assert.ok(Date.now() - started < 1000);
  assert.equal(workPool.idleCount, 0, 'handed over, not pooled');
  // waiters are served in order
  const a = workPool.take();
  const b = workPool.take();
  const one = await pair();
  const two = await pair();
  workPool.add(one.connection);
  workPool.add(two.connection);
  assert.equal(await a, one.connection);
  assert.equal(await b, two.connection);
  workPool.clear();
});

test('take() resolves undefined after waitMs, and a later add() goes into the pool', async () => {
  const { pool: workPool } = pool({ waitMs: 150 });
  const started = Date.now();
  assert.equal(await workPool.take(), undefined);
  const waited = Date.now() - started;
  assert.ok(waited >= 140 && waited < 1000, `waited ${waited} ms`);
  const { connection } = await pair();
  workPool.add(connection);
  assert.equal(workPool.idleCount, 1, 'the timed-out waiter is gone');
  workPool.clear();
});

test('take() resolves undefined at once when request() says the agent is not connected', async () => {
  const { pool: workPool, requests } = pool({ waitMs: 5000, answer: false });
  const started = Date.now();
  assert.equal(await workPool.take(), undefined);
  assert.ok(Date.now() - started < 100);
  assert.deepEqual(requests, [1]);
  // and no waiter is left behind to swallow the next connection
  const { connection } = await pair();
  workPool.add(connection);
  assert.equal(workPool.idleCount, 1);
  workPool.clear();
});

test('an idle connection the agent closes or resets is dropped and replaced', async () => {
  for (const how of ['end', 'destroy', 'reset'] as const) {
    const { pool: workPool, requests } = pool({ size: 2 });
    const { near, far, connection } = await pair();
    const other = await pair();
    near.pause(); // as the control port's handshake hands it over
    workPool.add(connection);
    workPool.add(other.connection);
    if (how === 'end') far.end();
    else if (how === 'destroy') far.destroy();
    else far.resetAndDestroy();
    await until(() => workPool.idleCount === 1, `${how}: drop`);
    await until(() => near.destroyed, `${how}: our end closed`);
    assert.deepEqual(requests, [1], how);
    assert.equal(await workPool.take(), other.connection, how);
    workPool.clear();
  }
});

test('an idle connection on which the agent sends a byte is dropped and replaced', async () => {
  const { pool: workPool, requests } = pool({ size: 1 });
  const { near, far, connection } = await pair();
  workPool.add(connection);
  far.write(Buffer.from([0x16]));
  await until(() => workPool.idleCount === 0, 'drop');
  assert.equal(near.destroyed, true);
  assert.deepEqual(requests, [1]);
  // with the pool still above size, no replacement is asked for
  const { pool: big, requests: bigRequests } = pool({ size: 1, maxIdle: 4 });
  const a = await pair();
  const b = await pair();
  big.add(a.connection);
  big.add(b.connection);
  a.far.write('x');
  await until(() => big.idleCount === 1, 'drop above size');
  assert.deepEqual(bigRequests, []);
  big.clear();
});

test('maxIdle is respected: an extra connection is destroyed', async () => {
  const { pool: workPool } = pool({ size: 2, maxIdle: 2 });
  const pairs = [await pair(), await pair(), await pair()];
  for (const { connection } of pairs) workPool.add(connection);
  assert.equal(workPool.idleCount, 2);
  assert.equal(pairs[2]!.near.destroyed, true);
  assert.equal(pairs[0]!.near.destroyed, false);
  await once(pairs[2]!.far, 'close');
  const taken = [await workPool.take(), await workPool.take()];
  assert.deepEqual(new Set(taken), new Set([pairs[0]!.connection, pairs[1]!.connection]));
  workPool.clear();
});

test('clear() destroys idle connections and resolves waiters with undefined', async () => {
  const { pool: workPool } = pool({ size: 2 });
  const idle = [await pair(), await pair()];
  for (const { connection } of idle) workPool.add(connection);
  workPool.clear();
  assert.equal(workPool.idleCount, 0);
  for (const { near, far } of idle) {
    assert.equal(near.destroyed, true);
    await once(far, 'close');
  }
  const started = Date.now();
  const waiters = [workPool.take(), workPool.take()];
  workPool.clear();
  assert.deepEqual(await Promise.all(waiters), [undefined, undefined]);
  assert.ok(Date.now() - started < 200, 'at once, not after waitMs');
  // a connection arriving afterwards is pooled, not given to a cleared waiter
  const late = await pair();
  workPool.add(late.connection);
  assert.equal(workPool.idleCount, 1);
  workPool.clear();
});
