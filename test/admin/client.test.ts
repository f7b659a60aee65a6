import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AdminApi, FAILURE_BURST } from '../../src/admin/api.js';
import { AdminClient, clockSkewMessage, type AdminEndpoint } from '../../src/admin/client.js';
import { spanInWords } from '../../src/common/duration.js';
import { KeyStore } from '../../src/admin/key-store.js';
import type { Scope } from '../../src/admin/scopes.js';
import type { AdminKey } from '../../src/common/admin-key.js';
import { createLocalAdminBackend } from '../../src/agent/admin-backend.js';
import { Whitelist } from '../../src/agent/whitelist/store.js';
import { ensureSelfSigned } from '../../src/tls/selfsigned.js';
import { captureLogs } from '../helpers/logs.js';
import { freePort } from '../helpers/ports.js';

/**
 * The client against the real API handler and the agent's real whitelist backend, served by a plain
 * node:https server on loopback: every answer the CLI and its messages depend on.
 */

interface AdminServer {
  base: URL;
  ca: string;
  whitelist: Whitelist;
  key(scopes?: Scope[]): Promise<AdminKey>;
  close(): Promise<void>;
}

const ALL_SCOPES: Scope[] = ['status:read', 'whitelist:write'];

async function startAdminServer(options: { serverClockOffsetMs?: number } = {}): Promise<AdminServer> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-admin-client-'));
  const { logger } = captureLogs('warn');
  const tls = await ensureSelfSigned(join(dir, 'certs'), ['localhost', '127.0.0.1'], new Date());
  const keys = await KeyStore.open(join(dir, 'admin-keys.json'), logger);
  const whitelist = await Whitelist.open({ configEntries: [{ cidr: '192.168.1.0/24', note: 'LAN' }], file: join(dir, 'whitelist.json'), logger, watch: false });
  const status = () => ({ agent: 'home', localPort: 25305, connected: true, publicAddress: { ip: '198.51.100.2', port: 41000 }, reachable: true, addressChanges: 0, updatedAt: new Date().toISOString(), pid: process.pid });
  const now = () => Date.now() + (options.serverClockOffsetMs ?? 0);
  const backend = createLocalAdminBackend({ whitelist, status });
  const api = new AdminApi({ keys, logger, allowMeTtlMs: 86_400_000, maxTtlMs: 7 * 86_400_000, now });
  const server: Server = createServer({ ...tls.material }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const target = req.url ?? '/';
      void api.handle({ method: req.method ?? 'GET', target, route: target.replace(/^\/api\//, ''), authorization: req.headers.authorization, body: Buffer.concat(chunks), clientIp: req.socket.remoteAddress ?? '' }, backend)
        .then((answer) => res.writeHead(answer.status, answer.headers).end(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: new URL(`https://127.0.0.1:${port}/api/`),
    ca: tls.ca.toString(),
    whitelist,
    async key(scopes = ALL_SCOPES) {
      const added = await keys.add({ scopes });
      assert.ok(added.ok);
      return { id: added.value.id, secret: added.value.secret };
    },
    async close() {
      whitelist.close();
      await new Promise((resolve) => server.close(resolve));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function clientFor(server: AdminServer, key: AdminKey, extra: Partial<AdminEndpoint> = {}, now?: () => number): AdminClient {
  const endpoint: AdminEndpoint = { base: server.base, ca: server.ca, trustHint: 'pass its CA with --ca', keyHint: 'make one with homeport keygen', ...extra };
  return new AdminClient({ endpoint, key, ...(now && { now }) });
}

function errorOf(answer: { ok: boolean; error?: string }): string {
  assert.equal(answer.ok, false, 'the request should have failed');
  return answer.error!;
}

describe('AdminClient against the admin API', () => {
  let server: AdminServer;
  let key: AdminKey;
  before(async () => {
    server = await startAdminServer();
    key = await server.key();
  });
  after(() => server.close());

  test('add, list, allow-me and remove round-trip and reach the whitelist', async () => {
    const client = clientFor(server, key);
    const added = await client.add({ cidr: '203.0.113.7/32', note: 'hotel', ttl: '2h' });
    assert.ok(added.ok, added.ok ? '' : added.error);
    assert.equal(added.value.cidr, '203.0.113.7/32');
    const expiresIn = Date.parse(added.value.expires!) - Date.now();
    assert.ok(expiresIn > 7_190_000 && expiresIn <= 7_200_000, `expires in ${expiresIn} ms`);
    assert.ok(server.whitelist.allows('203.0.113.7'));

    const me = await client.allowMe();
    assert.ok(me.ok);
    assert.equal(me.value.cidr, '127.0.0.1/32');
    assert.ok(server.whitelist.allows('127.0.0.1'));

    const listed = await client.list();
    assert.ok(listed.ok);
    assert.deepEqual(listed.value.map((entry) => [entry.cidr, entry.source]).sort(), [
      ['127.0.0.1/32', 'runtime'], ['192.168.1.0/24', 'config'], ['203.0.113.7/32', 'runtime'],
    ]);

    const removed = await client.remove('203.0.113.7/32');
    assert.deepEqual(removed, { ok: true, value: { removed: 1 } });
    assert.equal(server.whitelist.allows('203.0.113.7'), false);
    assert.equal((await client.remove('127.0.0.1/32')).ok, true);
  });

  test('status carries the home address and reachability', async () => {
    const status = await clientFor(server, key).status();
    assert.ok(status.ok);
    assert.equal(status.value.publicAddress, '198.51.100.2:41000');
    assert.equal(status.value.reachable, true);
  });

  test('an IPv6 CIDR survives the percent-encoded path', async () => {
    const client = clientFor(server, key);
    assert.ok((await client.add({ cidr: '2001:db8::/48' })).ok);
    assert.deepEqual(await client.remove('2001:db8::/48'), { ok: true, value: { removed: 1 } });
  });

  test('a key the server does not know: 401 naming the key and where keys come from', async () => {
    const unknown = { id: '0123456789ab', secret: 'x'.repeat(43) };
    const error = errorOf(await clientFor(server, unknown).list());
    assert.match(error, /^127\.0\.0\.1:\d+ refused key 0123456789ab: unknown key .*; make one with homeport keygen$/);
  });

  test('a wrong secret for a known key is refused as a bad signature', async () => {
    const error = errorOf(await clientFor(server, { id: key.id, secret: 'y'.repeat(43) }).list());
    assert.match(error, new RegExp(`refused key ${key.id}: the signature does not match`));
  });

  test('a key without whitelist:write may list but not add (403)', async () => {
    const reader = clientFor(server, await server.key(['status:read']));
    assert.equal((await reader.list()).ok, true);
    const error = errorOf(await reader.add({ cidr: '203.0.113.9' }));
    assert.match(error, /may not do this on 127\.0\.0\.1:\d+: .*lacks the scope whitelist:write/);
  });

  test('the server\'s refusal of a bad request is passed on in one line', async () => {
    const error = errorOf(await clientFor(server, key).add({ cidr: '203.0.113.7/32', ttl: '30d' }));
    assert.match(error, /^127\.0\.0\.1:\d+ answered 400: ttl 30d is longer than the allowed maximum of 7d$/);
  });

  test('a client clock 7 min 12 s slow is told how far off it is', async () => {
    const slow = () => Date.now() - 432_000;
    const error = errorOf(await clientFor(server, key, {}, slow).list());
    assert.match(error, /^your clock is 7 min 12 s behind 127\.0\.0\.1:\d+; fix the time \(NTP\) and retry$/);
  });

  test('an untrusted certificate names the code and the CA to pass', async () => {
    const endpoint: AdminEndpoint = { base: server.base, trustHint: 'pass the agent\'s CA with --ca' };
    const error = errorOf(await new AdminClient({ endpoint, key }).list());
    assert.match(error, /^cannot verify the TLS certificate of https:\/\/127\.0\.0\.1:\d+\/api\/ \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)\): pass the agent's CA with --ca$/);
  });

  test('a certificate for other names fails verification unless the client checks the name it was issued for', async () => {
    const wrongName = errorOf(await clientFor(server, key, { certificateName: 'nas.example.com' }).list());
    assert.match(wrongName, /\(ERR_TLS_CERT_ALTNAME_INVALID\)/);
    assert.equal((await clientFor(server, key, { certificateName: 'localhost' }).list()).ok, true);
  });
});

describe('AdminClient and the network', () => {
  test('nothing listening: the URL and the errno', async () => {
    const port = await freePort();
    const endpoint = { base: new URL(`https://127.0.0.1:${port}/api/`), trustHint: '' };
    const error = errorOf(await new AdminClient({ endpoint, key: { id: '0123456789ab', secret: 'x'.repeat(43) } }).list());
    assert.equal(error, `cannot reach https://127.0.0.1:${port}/api/ (ECONNREFUSED); is the server running and listening there?`);
  });

  test('a server whose clock runs ahead: the client is told it is behind, by how much', async () => {
    const server = await startAdminServer({ serverClockOffsetMs: 3 * 3_600_000 + 5 * 60_000 });
    try {
      const error = errorOf(await clientFor(server, await server.key()).status());
      assert.match(error, /^your clock is 3 h 5 min behind 127\.0\.0\.1:\d+/);
    } finally {
      await server.close();
    }
  });

  test('too many failures from one address: 429 with the wait from Retry-After', async () => {
    const server = await startAdminServer();
    try {
      const stranger = clientFor(server, { id: 'abcdefabcdef', secret: 'z'.repeat(43) });
      for (let attempt = 0; attempt < FAILURE_BURST; attempt++) assert.match(errorOf(await stranger.list()), /refused key/);
      const error = errorOf(await stranger.list());
      assert.match(error, /^127\.0\.0\.1:\d+ refuses requests from this address after too many failures: retry in \d+ s$/);
      assert.ok((await clientFor(server, await server.key()).list()).ok, 'a correctly signed request still goes through');
    } finally {
      await server.close();
    }
  });
});

describe('words for times', () => {
  test('spanInWords keeps the two largest units', () => {
    assert.equal(spanInWords(432_000), '7 min 12 s');
    assert.equal(spanInWords(86_399_000), '23 h 59 min');
    assert.equal(spanInWords(2 * 86_400_000 + 5 * 60_000), '2 d');
    assert.equal(spanInWords(40_900), '40 s');
    assert.equal(spanInWords(3_600_000), '1 h');
    assert.equal(spanInWords(400), '0 s');
  });

  test('clockSkewMessage says behind or ahead', () => {
    assert.equal(clockSkewMessage(432_000, 'rv:8443'), 'your clock is 7 min 12 s behind rv:8443; fix the time (NTP) and retry');
    assert.equal(clockSkewMessage(-600_000, 'rv:8443'), 'your clock is 10 min ahead of rv:8443; fix the time (NTP) and retry');
  });
});
