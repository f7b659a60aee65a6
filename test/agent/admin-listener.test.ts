import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { request } from 'node:https';
import { createConnection, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connect } from 'node:tls';
import { pino } from 'pino';
import { AdminClient } from '../../src/admin/client.js';
import { KeyStore, keyStorePath } from '../../src/admin/key-store.js';
import type { AdminKey } from '../../src/common/admin-key.js';
import { startAgentFixture, type AgentFixture } from '../helpers/agent-fixture.js';

let upstream: Server;
let fixture: AgentFixture;
let key: AdminKey;
let client: AdminClient;

before(async () => {
  upstream = createServer((_req, res) => res.end('home'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  fixture = await startAgentFixture({
    target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    allow: ['127.0.0.9/32'],
    extra: '[admin]\nlisten = "127.0.0.1:0"\n',
  });
  // keygen from another process: the running agent sees the key without a restart
  const store = await KeyStore.open(keyStorePath(join(fixture.dir, 'state')), pino({ level: 'silent' }));
  const added = await store.add({ scopes: ['status:read', 'whitelist:write'], note: 'test' });
  assert.ok(added.ok);
  key = added.value;
  client = new AdminClient({
    endpoint: { base: new URL(`https://127.0.0.1:${fixture.agent.adminPort}/api/`), ca: fixture.ca, certificateName: 'localhost', trustHint: 'the test CA' },
    key,
  });
});

after(async () => {
  await fixture?.close();
  upstream?.close();
});

/** Whether a TLS client from `localAddress` gets through the agent's gate (a denied one is reset before TLS). */
function admitted(localAddress: string): Promise<boolean> {
  return new Promise((resolve) => {
    const tcp = createConnection({ host: '127.0.0.1', port: fixture.agent.port, localAddress });
    const socket = connect({ socket: tcp, ca: fixture.ca, servername: 'localhost' }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
    socket.on('close', () => resolve(false));
    tcp.on('error', () => resolve(false));
  });
}

test('GET status and whitelist answer from the agent itself', async () => {
  const status = await client.status();
  assert.ok(status.ok, status.ok ? '' : status.error);
  assert.deepEqual(status.value, { agent: 'test', online: false });
  const list = await client.list();
  assert.ok(list.ok, list.ok ? '' : list.error);
  assert.deepEqual(list.value, [{ cidr: '127.0.0.9/32', source: 'config' }]);
});

test('POST whitelist lets a refused client in at once and persists; DELETE shuts it out again', async () => {
  assert.equal(await admitted('127.0.0.2'), false, 'not whitelisted yet');
  const added = await client.add({ cidr: '127.0.0.2', ttl: '1h', note: 'laptop' });
  assert.ok(added.ok, added.ok ? '' : added.error);
  assert.equal(added.value.cidr, '127.0.0.2/32');
  assert.equal(added.value.note, 'laptop');
  assert.equal(added.value.source, 'runtime');
  const lifetime = Date.parse(added.value.expires!) - Date.now();
  assert.ok(lifetime > 3_590_000 && lifetime <= 3_600_000, `expires in ${lifetime} ms`);
  assert.equal(await admitted('127.0.0.2'), true, 'the gate lets it in');
  const file = JSON.parse(await readFile(join(fixture.dir, 'state', 'whitelist.json'), 'utf8')) as { entries: { cidr: string }[] };
  assert.deepEqual(file.entries.map((entry) => entry.cidr), ['127.0.0.2/32']);
  const line = fixture.logs.find((entry) => entry.msg === 'admin: whitelist entry added');
  assert.equal(line?.keyId, key.id);
  assert.equal(line?.client, '127.0.0.1');

  const removed = await client.remove('127.0.0.2/32');
  assert.deepEqual(removed, { ok: true, value: { removed: 1 } });
  assert.equal(await admitted('127.0.0.2'), false, 'removed: refused again');
  const again = await client.remove('127.0.0.2/32');
  assert.ok(!again.ok);
  assert.match(again.error, /404: 127\.0\.0\.2\/32 is not in the whitelist/);
  const config = await client.remove('127.0.0.9/32');
  assert.ok(!config.ok);
  assert.match(config.error, /409: 127\.0\.0\.9\/32 comes from the config file's whitelist\.allow; remove it there/);
});

test('POST allow-me adds the caller\'s own address as /32 with the default lifetime of 24 h', async () => {
  assert.equal(await admitted('127.0.0.1'), false);
  const added = await client.allowMe();
  assert.ok(added.ok, added.ok ? '' : added.error);
  assert.equal(added.value.cidr, '127.0.0.1/32');
  const lifetime = Date.parse(added.value.expires!) - Date.now();
  assert.ok(lifetime > 86_390_000 && lifetime <= 86_400_000, `expires in ${lifetime} ms`);
  assert.equal(await admitted('127.0.0.1'), true);
  const list = await client.list();
  assert.ok(list.ok);
  assert.deepEqual(list.value.map((entry) => entry.cidr), ['127.0.0.9/32', '127.0.0.1/32']);
});

/** One unsigned request to the admin listener; the body is streamed in 1 KiB chunks. */
function unsigned(method: string, path: string, bodyBytes = 0): Promise<{ status: number; connection: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port: fixture.agent.adminPort, method, path, ca: fixture.ca, servername: 'localhost', agent: false,
      headers: bodyBytes > 0 ? { 'content-length': bodyBytes } : {},
    }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body }));
    });
    req.on('error', reject);
    for (let sent = 0; sent < bodyBytes; sent += 1024) req.write(Buffer.alloc(Math.min(1024, bodyBytes - sent), 'x'));
    req.end();
  });
}

test('the listener: 404 outside /api/, 401 unsigned, 413 for a body over 16 KiB without reading it all', async () => {
  const outside = await unsigned('GET', '/status');
  assert.equal(outside.status, 404);
  assert.match(JSON.parse(outside.body).error, /under \/api\//);
  const anonymous = await unsigned('GET', '/api/status');
  assert.equal(anonymous.status, 401);
  assert.match(JSON.parse(anonymous.body).error, /Authorization/);
  const large = await unsigned('POST', '/api/whitelist', 1024 * 1024);
  assert.equal(large.status, 413);
  assert.equal(large.connection, 'close', 'the unread rest of the body ends the connection');
  assert.equal((await client.status()).ok, true, 'the listener still serves');
});
