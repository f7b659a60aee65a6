import assert from 'node:assert/strict';
import { appendFile, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';
import { createServer, type Server } from 'node:http';
import { Agent, request } from 'node:https';
import { createConnection, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'node:tls';
import { FAILURE_BURST } from '../src/admin/api.js';
import type { ApiWhitelistEntry } from '../src/admin/api-types.js';
import { KeyStore, keyStorePath } from '../src/admin/key-store.js';
import type { AdminKey } from '../src/common/admin-key.js';
import { authorizationHeader } from '../src/admin/signature.js';
import { ok } from '../src/common/result.js';
import { createLocalAdminBackend, executeAdminOrder } from '../src/agent/admin-backend.js';
import { startAgent, type RunningAgent } from '../src/agent/agent.js';
import { loadAgentConfig } from '../src/config/agent.js';
import { loadRendezvousConfig } from '../src/config/rendezvous.js';
import { MAX_FRAME_BYTES } from '../src/protocol/framing.js';
import { ADMIN_RESULT_PART_CHARS, MAX_ADMIN_RESULT_CHARS, type AdminResultMessage } from '../src/protocol/messages.js';
import { startRendezvous, type RunningRendezvous } from '../src/rendezvous/rendezvous.js';
import { MAX_PENDING_ADMIN_REQUESTS, PendingAdminRequests } from '../src/rendezvous/remote-admin.js';
import { captureLogs, type LogLine } from './helpers/logs.js';
import { writeLoopbackConfigs, type LoopbackConfigs } from './helpers/loopback-pair.js';
import { waitFor } from './helpers/wait.js';

/**
 * A real rendezvous and a real agent on loopback, in this process: whitelist changes signed with a
 * rendezvous key go to /api/agents/home/... and end in the agent's gate.
 */

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON answers
  json: any;
}

let configs: LoopbackConfigs;
let upstream: Server;
let rendezvous: RunningRendezvous;
let agent: RunningAgent;
let agentLogs: LogLine[];
let rendezvousCa: string;
let agentCa: string;
let key: AdminKey;

async function startRendezvousHere(): Promise<void> {
  rendezvous = await startRendezvous(await loadRendezvousConfig(configs.rendezvousConfig), captureLogs().logger);
}

async function startAgentHere(): Promise<void> {
  const { logger, lines } = captureLogs();
  agentLogs = lines;
  agent = await startAgent(await loadAgentConfig(configs.agentConfig), logger);
}

const online = (): boolean => rendezvous.registry.get('home')?.online === true;

before(async () => {
  upstream = createServer((_req, res) => res.end('home'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  configs = await writeLoopbackConfigs({
    prefix: 'hp-admin-e2e-',
    agent: { allow: '[]', target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` },
  });
  // a rendezvous laxer than the agent, which has no [admin] section and so the default maxTtl of 7 days
  await appendFile(configs.rendezvousConfig, '[admin]\nmaxTtl = "30d"\n');
  await startRendezvousHere();
  await startAgentHere();
  rendezvousCa = await readFile(join(configs.rendezvousState, 'certs', 'ca.pem'), 'utf8');
  agentCa = await readFile(join(configs.agentState, 'certs', 'ca.pem'), 'utf8');
  const store = await KeyStore.open(keyStorePath(configs.rendezvousState), captureLogs().logger);
  const added = await store.add({ scopes: ['status:read', 'whitelist:write'], note: 'phone' });
  assert.ok(added.ok);
  key = added.value;
  await waitFor('the agent is registered', online, 10_000);
});

after(async () => {
  await agent?.close();
  await rendezvous?.close();
  upstream?.close();
  await rm(configs.dir, { recursive: true, force: true });
});

interface CallOptions {
  body?: object;
  key?: AdminKey;
  localAddress?: string;
  agent?: Agent;
  /** Default "home". */
  agentName?: string;
}

/** One signed request to the rendezvous's admin API. */
function api(method: string, route: string, options: CallOptions = {}): Promise<Answer> {
  const target = `/api/agents/${options.agentName ?? 'home'}/${route}`;
  const body = options.body === undefined ? '' : JSON.stringify(options.body);
  const authorization = authorizationHeader(options.key ?? key, { method, target, body });
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port: configs.ports.http, method, path: target, ca: rendezvousCa, servername: 'localhost',
      localAddress: options.localAddress ?? '127.0.0.1', agent: options.agent ?? false,
      headers: { authorization, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Whether a TLS client from `localAddress` gets through the agent's gate (a denied one is reset before TLS). */
function admitted(localAddress: string): Promise<boolean> {
  return new Promise((resolve) => {
    const tcp = createConnection({ host: '127.0.0.1', port: agent.port, localAddress });
    const socket = connect({ socket: tcp, ca: agentCa, servername: 'localhost' }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(false));
    tcp.on('error', () => resolve(false));
  });
}

const cidrs = (answer: Answer): string[] => (answer.json.entries as ApiWhitelistEntry[]).map((entry) => entry.cidr);

describe('the admin API through the rendezvous', { timeout: 60_000 }, () => {
  test('a change reaches the agent\'s gate within a second and is logged there with key and client', async (t) => {
    assert.equal(await admitted('127.0.0.2'), false, 'refused before');
    assert.equal(await admitted('127.0.0.1'), true, 'the rendezvous\'s address passes the gate for its reachability checks');
    const started = performance.now();
    const added = await api('POST', 'whitelist', { body: { cidr: '127.0.0.2', ttl: '1h', note: 'laptop' } });
    assert.equal(added.status, 201, JSON.stringify(added.json));
    await waitFor('127.0.0.2 is let in', () => admitted('127.0.0.2'), 1000);
    const elapsedMs = performance.now() - started;
    t.diagnostic(`change through the rendezvous to the gate: ${elapsedMs.toFixed(1)} ms`);
    assert.ok(elapsedMs < 1000, `${elapsedMs} ms`);
    assert.deepEqual({ ...added.json.entry, expires: undefined, added: undefined }, { cidr: '127.0.0.2/32', note: 'laptop', source: 'runtime', expires: undefined, added: undefined });
    const line = agentLogs.find((entry) => entry.msg === 'whitelist change through the rendezvous');
    assert.deepEqual([line?.op, line?.cidr, line?.keyId, line?.client], ['add', '127.0.0.2/32', key.id, '127.0.0.1']);

    const list = await api('GET', 'whitelist');
    assert.equal(list.status, 200);
    assert.deepEqual(cidrs(list), ['127.0.0.2/32'], 'the new entry; the rendezvous\'s own address is admitted by the gate, not listed');
    const status = await api('GET', 'status');
    assert.equal(status.status, 200);
    assert.equal(status.json.agent, 'home');
    assert.equal(status.json.online, true);
    assert.match(status.json.publicAddress, /^127\.0\.0\.1:\d+$/);
    assert.equal(status.json.path, 'direct', 'no relay for this agent: users go to its punched port');
  });

  test('a whitelist far larger than a control frame is listed whole through the rendezvous', async () => {
    const file = join(configs.agentState, 'whitelist.json');
    const data = JSON.parse(await readFile(file, 'utf8')) as { version: number; entries: object[] };
    const note = `"quoted" — ünïcödé ${'x'.repeat(120)}`;
    const many = Array.from({ length: 300 }, (_, i) => ({ cidr: `10.1.${i >> 8}.${i & 255}/32`, note, added: new Date().toISOString() }));
    await writeFile(file, JSON.stringify({ ...data, entries: [...data.entries, ...many] }));
    await waitFor('the agent reloads its whitelist file', () => agent.whitelist.entries().length >= 301, 10_000);
    const list = await api('GET', 'whitelist');
    assert.equal(list.status, 200);
    assert.ok(JSON.stringify(list.json).length > 4 * MAX_FRAME_BYTES, 'the answer spans many frames');
    assert.deepEqual(cidrs(list).slice(1), many.map((entry) => entry.cidr));
    assert.ok((list.json.entries as ApiWhitelistEntry[]).slice(1).every((entry) => entry.note === note));
    assert.equal((await api('GET', 'status')).json.online, true, 'the control connection is still up');
  });

  test('an entry with a ttl of 2 s stops being let in on time, without a restart, and leaves the list', async () => {
    const added = await api('POST', 'whitelist', { body: { cidr: '127.0.0.5/32', ttl: '2s' } });
    assert.equal(added.status, 201, JSON.stringify(added.json));
    const expiresAt = Date.parse(added.json.entry.expires);
    assert.equal(await admitted('127.0.0.5'), true);
    await sleep(expiresAt - Date.now() - 300);
    assert.equal(await admitted('127.0.0.5'), true, 'still in just before it expires');
    await sleep(expiresAt - Date.now() + 100);
    assert.equal(await admitted('127.0.0.5'), false, 'refused just after it expired');
    assert.ok(!cidrs(await api('GET', 'whitelist')).includes('127.0.0.5/32'));
  });

  test('1,000 bad attempts from one address are rate-limited (429 + Retry-After); another address still works', async (t) => {
    const forged = { id: key.id, secret: 'A'.repeat(43) };
    const pool = new Agent({ keepAlive: true, maxSockets: 8 });
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    try {
      for (let batch = 0; batch < 1000; batch += 50) {
        const answers = await Promise.all(Array.from({ length: 50 }, () => api('GET', 'whitelist', { key: forged, localAddress: '127.0.0.3', agent: pool })));
        for (const answer of answers) {
          statuses.push(answer.status);
          if (answer.status === 429) retryAfter = answer.headers['retry-after'] as string;
        }
      }
      const refused = statuses.filter((status) => status === 401).length;
      const limited = statuses.filter((status) => status === 429).length;
      t.diagnostic(`1,000 forged requests from 127.0.0.3: ${refused} × 401, ${limited} × 429`);
      assert.equal(refused + limited, 1000);
      assert.ok(refused >= FAILURE_BURST && refused <= FAILURE_BURST + 5, `${refused} answered 401 before the limit`);
      assert.match(retryAfter ?? '', /^\d+$/);
      const blocked = await api('GET', 'whitelist', { key: forged, localAddress: '127.0.0.3' });
      assert.equal(blocked.status, 429, 'a bad key is turned away from that address for now');
      const owner = await api('GET', 'whitelist', { localAddress: '127.0.0.3' });
      assert.equal(owner.status, 200, 'a correctly signed request from that address still gets through');
    } finally {
      pool.destroy();
    }
    const other = await api('GET', 'whitelist', { localAddress: '127.0.0.4' });
    assert.equal(other.status, 200);
    assert.ok(cidrs(other).includes('127.0.0.2/32'));
  });

  test('the agent applies its own limits to forwarded orders: its maxTtl, and no network broader than the API allows', async () => {
    const tooLong = await api('POST', 'whitelist', { body: { cidr: '127.0.0.7', ttl: '10d' } });
    assert.deepEqual([tooLong.status, tooLong.json], [400, { error: 'ttl 10d is longer than agent home\'s maximum of 7d (its [admin] maxTtl)' }]);
    const within = await api('POST', 'whitelist', { body: { cidr: '127.0.0.7', ttl: '7d' } });
    assert.equal(within.status, 201, JSON.stringify(within.json));
    const removed = await api('DELETE', 'whitelist/127.0.0.7%2F32');
    assert.equal(removed.status, 200);
    const everyone = await api('POST', 'whitelist', { body: { cidr: '0.0.0.0/0' } });
    assert.equal(everyone.status, 400);
    assert.match(everyone.json.error, /^cidr 0\.0\.0\.0\/0 is too broad/);

    // an order as a rendezvous without that check (an older one) would send it: the agent refuses it too
    const backend = createLocalAdminBackend({ whitelist: agent.whitelist, status: () => agent.status() });
    for (const cidr of ['0.0.0.0/0', '::/0', '10.0.0.0/7']) {
      const answer = await executeAdminOrder(backend, { id: 1, op: 'add', cidr, ttlMs: 3_600_000, keyId: key.id, client: '127.0.0.1' }, captureLogs().logger);
      assert.equal(answer.status, 400, `${cidr}: ${answer.body}`);
      assert.match(JSON.parse(answer.body).error, /is too broad/);
    }
    assert.ok(!cidrs(await api('GET', 'whitelist')).some((cidr) => cidr.endsWith('/0') || cidr.endsWith('/7')), 'nothing broad was added');
  });

  test('after restarting the agent and the rendezvous the entry is still listed and enforced', async () => {
    await agent.close();
    await rendezvous.close();
    assert.equal(await admitted('127.0.0.2'), false, 'nothing listens');
    await startRendezvousHere();
    await startAgentHere();
    await waitFor('the agent is registered again', online, 10_000);
    const list = await api('GET', 'whitelist');
    assert.equal(list.status, 200);
    assert.ok(cidrs(list).includes('127.0.0.2/32'));
    assert.equal(await admitted('127.0.0.2'), true);
    assert.equal(await admitted('127.0.0.6'), false);
    const removed = await api('DELETE', 'whitelist/127.0.0.2%2F32');
    assert.deepEqual([removed.status, removed.json], [200, { removed: 1 }]);
    assert.equal(await admitted('127.0.0.2'), false);
    const again = await api('DELETE', 'whitelist/127.0.0.2%2F32');
    assert.deepEqual([again.status, again.json], [404, { error: '127.0.0.2/32 is not in the whitelist' }], 'the agent\'s refusal passes through');
  });

  test('with the agent offline: 503 naming it for whitelist calls; status still answers from the registry', async () => {
    await agent.close();
    await waitFor('the rendezvous sees the agent offline', () => !online(), 10_000);
    for (const [method, route, body] of [['GET', 'whitelist'], ['POST', 'allow-me', {}], ['DELETE', 'whitelist/127.0.0.2%2F32']] as const) {
      const answer = await api(method, route, { body });
      assert.equal(answer.status, 503, `${method} ${route}`);
      assert.match(answer.json.error, /^home is offline since \S+; the change can be made once it reconnects$/);
    }
    const status = await api('GET', 'status');
    assert.equal(status.status, 200);
    assert.equal(status.json.online, false);
    assert.match(status.json.publicAddress, /^127\.0\.0\.1:\d+$/, 'the last known address');
    assert.equal(status.json.path, 'none');
    assert.match(status.json.pathReason, /^home is offline since \S+$/);
    const stranger = await api('GET', 'status', { agentName: 'nobody' });
    assert.equal(stranger.status, 404);
    assert.match(stranger.json.error, /no agent named "nobody"/);
  });
});

describe('PendingAdminRequests: every forwarded request is settled exactly once', () => {
  const part = (id: number, body: string, more = false): AdminResultMessage =>
    ({ type: 'adminResult', seq: 1, mac: '0'.repeat(64), id, status: 200, body, ...(more ? { more: true } : {}) });

  test('parts are joined in order; a part for no waiting request is dropped', async () => {
    const pending = new PendingAdminRequests('home', 1000);
    const sent: number[] = [];
    const reply = pending.request({ op: 'list' }, (order) => { sent.push(order.id); return ok(undefined); });
    pending.receive(part(99, '{"late":true}'));
    pending.receive(part(sent[0]!, '[{"cidr":', true));
    pending.receive(part(sent[0]!, '"10.0.0.1/32"}]'));
    assert.deepEqual(await reply, { ok: true, value: { status: 200, body: '[{"cidr":"10.0.0.1/32"}]' } });
  });

  test('no answer in time is 504; an ended connection is 503; a failed send or an endless answer is 502; too many waiting is 503', async () => {
    const pending = new PendingAdminRequests('home', 50);
    const silent = await pending.request({ op: 'list' }, () => ok(undefined));
    assert.deepEqual(silent, { ok: false, status: 504, error: 'home did not answer within 0.05 s' });
    const waiting = pending.request({ op: 'list' }, () => ok(undefined));
    pending.failAll();
    assert.deepEqual(await waiting, { ok: false, status: 503, error: 'the connection to home ended before it answered; try again when it is back' });
    const unsent = await pending.request({ op: 'list' }, () => ({ ok: false, error: 'the control connection is closed' }));
    assert.deepEqual(unsent, { ok: false, status: 502, error: 'cannot forward the request to home: the control connection is closed' });

    const ids: number[] = [];
    const huge = pending.request({ op: 'list' }, (order) => { ids.push(order.id); return ok(undefined); });
    const chunk = 'x'.repeat(ADMIN_RESULT_PART_CHARS);
    for (let sent = 0; sent <= MAX_ADMIN_RESULT_CHARS; sent += chunk.length) pending.receive(part(ids[0]!, chunk, true));
    assert.deepEqual(await huge, { ok: false, status: 502, error: `home sent an answer longer than ${MAX_ADMIN_RESULT_CHARS} characters` });

    const busy = new PendingAdminRequests('home', 1000);
    const flood = Array.from({ length: MAX_PENDING_ADMIN_REQUESTS }, () => busy.request({ op: 'list' }, () => ok(undefined)));
    const refused = await busy.request({ op: 'list' }, () => ok(undefined));
    assert.deepEqual(refused, { ok: false, status: 503, error: `home has ${MAX_PENDING_ADMIN_REQUESTS} admin requests in flight; try again shortly` });
    busy.failAll();
    assert.ok((await Promise.all(flood)).every((reply) => !reply.ok && reply.status === 503));
  });
});
