import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminApi, FAILURE_BURST, MAX_BODY_BYTES, failureBucket } from '../../src/admin/api.js';
import type { Actor, AdminBackend, AdminHttpRequest, AdminHttpResponse, ApiWhitelistEntry, Outcome } from '../../src/admin/api-types.js';
import { KeyStore, keyStorePath, type StoredKey } from '../../src/admin/key-store.js';
import type { Scope } from '../../src/admin/scopes.js';
import { authorizationHeader } from '../../src/admin/signature.js';
import { randomNonce } from '../../src/common/nonce.js';
import { captureLogs } from '../helpers/logs.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3_600_000;
const PHONE = '198.51.100.20';

/** An in-memory whitelist behind the API: what the agent's backend does, without files or sockets. */
class FakeBackend implements AdminBackend {
  readonly entries = new Map<string, ApiWhitelistEntry>();
  readonly actors: Actor[] = [];
  constructor(private readonly clock: { now: number }) {}

  status(): Promise<Outcome<{ agent: string; online: boolean }>> {
    return Promise.resolve({ ok: true, value: { agent: 'home', online: true } });
  }

  list(): Promise<Outcome<ApiWhitelistEntry[]>> {
    return Promise.resolve({ ok: true, value: [...this.entries.values()] });
  }

  add(entry: { cidr: string; note?: string; ttlMs: number }, actor: Actor): Promise<Outcome<ApiWhitelistEntry>> {
    this.actors.push(actor);
    const stored: ApiWhitelistEntry = {
      cidr: entry.cidr, ...(entry.note !== undefined ? { note: entry.note } : {}),
      expires: new Date(this.clock.now + entry.ttlMs).toISOString(), added: new Date(this.clock.now).toISOString(), source: 'runtime',
    };
    this.entries.set(entry.cidr, stored);
    return Promise.resolve({ ok: true, value: stored });
  }

  remove(cidr: string, actor: Actor): Promise<Outcome<{ removed: number }>> {
    this.actors.push(actor);
    if (!this.entries.delete(cidr)) return Promise.resolve({ ok: false, status: 404, error: `${cidr} is not in the runtime whitelist` });
    return Promise.resolve({ ok: true, value: { removed: 1 } });
  }
}

interface Fixture {
  api: AdminApi;
  backend: FakeBackend;
  clock: { now: number };
  store: KeyStore;
  /** A read+write key and a read-only key. */
  admin: StoredKey;
  reader: StoredKey;
  logs: ReturnType<typeof captureLogs>['lines'];
  /** A correctly signed request; `overrides` change what is sent after signing. */
  signed(method: string, route: string, body?: string, options?: SignOptions): AdminHttpRequest;
  send(method: string, route: string, body?: string, options?: SignOptions): Promise<Response>;
}

interface SignOptions {
  key?: StoredKey | { id: string; secret: string };
  clientIp?: string;
  /** When the client's clock says the request was signed. */
  signedAt?: number;
  nonce?: string;
  /** Sent instead of what was signed. */
  overrides?: Partial<AdminHttpRequest>;
}

interface Response extends AdminHttpResponse {
  json: Record<string, unknown>;
}

async function fixture(t: { after(fn: () => Promise<void>): void }): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-admin-api-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { logger, lines } = captureLogs();
  const store = await KeyStore.open(keyStorePath(dir), logger);
  const newKey = async (scopes: Scope[]): Promise<StoredKey> => {
    const added = await store.add({ scopes });
    assert.ok(added.ok);
    return added.value;
  };
  const admin = await newKey(['status:read', 'whitelist:write']);
  const reader = await newKey(['status:read']);
  const clock = { now: T0 };
  const backend = new FakeBackend(clock);
  const api = new AdminApi({ keys: store, logger, allowMeTtlMs: 24 * HOUR, maxTtlMs: 7 * 24 * HOUR, now: () => clock.now });
  const signed = (method: string, route: string, body = '', options: SignOptions = {}): AdminHttpRequest => {
    const target = `/api/${route}`;
    const authorization = authorizationHeader(options.key ?? admin, { method, target, body }, { nowMs: options.signedAt ?? clock.now, nonce: options.nonce ?? randomNonce() });
    return { method, target, route, authorization, body: Buffer.from(body), clientIp: options.clientIp ?? PHONE, ...options.overrides };
  };
  return {
    api, backend, clock, store, admin, reader, logs: lines, signed,
    async send(method, route, body, options) {
      const response = await api.handle(signed(method, route, body, options), backend);
      return { ...response, json: JSON.parse(response.body) as Record<string, unknown> };
    },
  };
}

async function handle({ api, backend }: { api: AdminApi; backend: AdminBackend }, request: AdminHttpRequest): Promise<Response> {
  const response = await api.handle(request, backend);
  return { ...response, json: JSON.parse(response.body) as Record<string, unknown> };
}

test('signed requests reach the backend: status, list, add, remove', async (t) => {
  const f = await fixture(t);
  const status = await f.send('GET', 'status', '', { key: f.reader });
  assert.equal(status.status, 200);
  assert.deepEqual(status.json, { agent: 'home', online: true });
  assert.equal(status.headers['content-type'], 'application/json; charset=utf-8');
  assert.equal(status.headers['cache-control'], 'no-store');

  const added = await f.send('POST', 'whitelist', JSON.stringify({ cidr: '203.0.113.9/24', note: 'office', ttl: '90m' }));
  assert.equal(added.status, 201, added.body);
  assert.deepEqual(added.json.entry, {
    cidr: '203.0.113.0/24', note: 'office', expires: new Date(T0 + 90 * 60_000).toISOString(), added: new Date(T0).toISOString(), source: 'runtime',
  });
  const seconds = await f.send('POST', 'whitelist', JSON.stringify({ cidr: '2001:db8::1', ttl: 3600 }));
  assert.equal(seconds.status, 201, seconds.body);
  assert.equal((seconds.json.entry as ApiWhitelistEntry).expires, new Date(T0 + HOUR).toISOString(), 'ttl in whole seconds');
  const fallback = await f.send('POST', 'whitelist', JSON.stringify({ cidr: '192.0.2.1' }));
  assert.equal((fallback.json.entry as ApiWhitelistEntry).expires, new Date(T0 + 24 * HOUR).toISOString(), 'no ttl: the allow-me ttl');

  const list = await f.send('GET', 'whitelist', '', { key: f.reader });
  assert.deepEqual((list.json.entries as ApiWhitelistEntry[]).map((entry) => entry.cidr), ['203.0.113.0/24', '2001:db8::1/128', '192.0.2.1/32']);

  const removed = await f.send('DELETE', 'whitelist/203.0.113.0%2F24');
  assert.equal(removed.status, 200);
  assert.deepEqual(removed.json, { removed: 1 });
  assert.deepEqual(f.backend.actors.at(-1), { keyId: f.admin.id, clientIp: PHONE });
  const again = await f.send('DELETE', 'whitelist/203.0.113.0%2F24');
  assert.deepEqual([again.status, again.json.error], [404, '203.0.113.0/24 is not in the runtime whitelist'], 'the backend\'s answer passes through');
});

test('every refusal has its status and a one-line reason', async (t) => {
  const f = await fixture(t);
  const stranger = { id: 'abcdefabcdef', secret: f.admin.secret };
  const replayed = f.signed('GET', 'status');
  assert.equal((await f.api.handle(replayed, f.backend)).status, 200);
  const oversized = JSON.stringify({ cidr: '192.0.2.1', note: 'x'.repeat(MAX_BODY_BYTES) });
  const cases: [string, AdminHttpRequest, number, RegExp][] = [
    ['no Authorization header', { ...f.signed('GET', 'status'), authorization: undefined }, 401, /no Authorization header/],
    ['another scheme', { ...f.signed('GET', 'status'), authorization: 'Bearer abc' }, 401, /scheme must be HOMEPORT-HMAC/],
    ['a header missing sig', { ...f.signed('GET', 'status'), authorization: f.signed('GET', 'status').authorization!.replace(/, sig=.*/, '') }, 401, /sig=/],
    ['an unknown key', f.signed('GET', 'status', '', { key: stranger }), 401, /unknown key abcdefabcdef/],
    ['a wrong secret', f.signed('GET', 'status', '', { key: { id: f.admin.id, secret: 'B'.repeat(43) } }), 401, /signature does not match/],
    ['a tampered body', f.signed('POST', 'whitelist', '{"cidr":"192.0.2.1"}', { overrides: { body: Buffer.from('{"cidr":"0.0.0.0/0"}') } }), 401, /signature does not match/],
    ['a tampered query', f.signed('GET', 'status', '', { overrides: { target: '/api/status?x=1' } }), 401, /signature does not match/],
    ['a replayed request', replayed, 401, /nonce was used before/],
    ['a timestamp 301 s old', f.signed('GET', 'status', '', { signedAt: T0 - 301_000 }), 401, /clock is 301 s behind the server's/],
    ['a timestamp 400 s ahead', f.signed('GET', 'status', '', { signedAt: T0 + 400_000 }), 401, /clock is 400 s ahead of the server's/],
    ['a read-only key adding', f.signed('POST', 'whitelist', '{"cidr":"192.0.2.1"}', { key: f.reader }), 403, /lacks the scope whitelist:write/],
    ['a read-only key using allow-me', f.signed('POST', 'allow-me', '', { key: f.reader }), 403, /lacks the scope whitelist:write/],
    ['an unknown endpoint', f.signed('GET', 'keys'), 404, /no such endpoint "keys"/],
    ['DELETE without a cidr', f.signed('DELETE', 'whitelist/'), 404, /no such endpoint/],
    ['a wrong method', f.signed('PUT', 'whitelist'), 405, /PUT is not allowed on whitelist; use GET, POST/],
    ['a body that is not JSON', f.signed('POST', 'whitelist', '{cidr: 1.2.3.4}'), 400, /body is not valid JSON/],
    ['a JSON array', f.signed('POST', 'whitelist', '[]'), 400, /body must be a JSON object/],
    ['an empty body to POST whitelist', f.signed('POST', 'whitelist'), 400, /body is not valid JSON/],
    ['a misspelt field', f.signed('POST', 'whitelist', '{"cidr":"192.0.2.1","tll":"1h"}'), 400, /"tll" is not a known field here; the fields are cidr, note, ttl/],
    ['no cidr', f.signed('POST', 'whitelist', '{"note":"x"}'), 400, /cidr is missing/],
    ['a cidr that is a number', f.signed('POST', 'whitelist', '{"cidr":3232235777}'), 400, /cidr must be a string/],
    ['a bad cidr', f.signed('POST', 'whitelist', '{"cidr":"010.0.0.1/8"}'), 400, /cidr "010\.0\.0\.1\/8" is not an IP or CIDR: octet "010" has a leading zero/],
    ['a bad cidr to remove', f.signed('DELETE', 'whitelist/1.2.3'), 400, /cidr "1\.2\.3" is not an IP or CIDR/],
    ['bad percent-encoding', f.signed('DELETE', 'whitelist/%E0%A4%A'), 400, /not valid percent-encoding/],
    ['a ttl too long', f.signed('POST', 'whitelist', '{"cidr":"192.0.2.1","ttl":"8d"}'), 400, /ttl 8d is longer than the allowed maximum of 7d/],
    ['a ttl of zero', f.signed('POST', 'whitelist', '{"cidr":"192.0.2.1","ttl":0}'), 400, /ttl 0 must be a duration/],
    ['a ttl that is no duration', f.signed('POST', 'allow-me', '{"ttl":"tomorrow"}'), 400, /ttl "tomorrow" is not a duration/],
    ['a fractional ttl', f.signed('POST', 'allow-me', '{"ttl":1.5}'), 400, /positive number of seconds/],
    ['a two-line note', f.signed('POST', 'allow-me', '{"note":"a\\nb"}'), 400, /note must be one line/],
    ['a body over 16 KiB', f.signed('POST', 'whitelist', oversized), 413, /body is over 16384 bytes/],
  ];
  for (const [index, [name, request, status, error]] of cases.entries()) {
    // each case from its own address: together they would exceed one address's failure budget
    const response = await handle(f, { ...request, clientIp: `100.64.0.${index}` });
    assert.equal(response.status, status, `${name}: ${response.body}`);
    assert.match(response.json.error as string, error, name);
    assert.ok(!(response.json.error as string).includes('\n'), `${name}: one line`);
    if (status === 401) assert.equal(response.headers['www-authenticate'], 'HOMEPORT-HMAC', name);
  }
  assert.equal(f.backend.entries.size, 0, 'no refused request reached the backend');
});

test('the clock: 300 s either way is accepted; a skewed request gets the server\'s time', async (t) => {
  const f = await fixture(t);
  assert.equal((await f.send('GET', 'status', '', { signedAt: T0 - 300_000 })).status, 200);
  assert.equal((await f.send('GET', 'status', '', { signedAt: T0 + 300_000 })).status, 200);
  const skewed = await f.send('GET', 'status', '', { signedAt: T0 - 3_600_000 });
  assert.equal(skewed.status, 401);
  assert.equal(skewed.json.serverTime, new Date(T0).toISOString());
  assert.match(skewed.json.error as string, /3600 s behind/);
});

test('a key revoked by another process is refused at the next request; a new one works at once', async (t) => {
  const f = await fixture(t);
  assert.equal((await f.send('GET', 'status')).status, 200);
  const cli = await KeyStore.open(f.store.file, captureLogs().logger);
  const revoked = await cli.revoke(f.admin.id);
  assert.ok(revoked.ok && revoked.value);
  const refused = await f.send('GET', 'status');
  assert.equal(refused.status, 401);
  assert.match(refused.json.error as string, /unknown key .* revoked/);
  const fresh = await cli.add({ scopes: ['status:read'] });
  assert.ok(fresh.ok);
  assert.equal((await f.send('GET', 'status', '', { key: fresh.value })).status, 200);
});

test('1,000 bad attempts from one address end in 429 while another address still gets 200', async (t) => {
  const f = await fixture(t);
  const attacker = '203.0.113.66';
  const wrongSecret = { id: f.admin.id, secret: 'C'.repeat(43) };
  const statuses = new Map<number, number>();
  let last: Response | undefined;
  for (let i = 0; i < 1000; i++) {
    last = await f.send('GET', 'status', '', { key: wrongSecret, clientIp: attacker });
    statuses.set(last.status, (statuses.get(last.status) ?? 0) + 1);
  }
  assert.deepEqual(Object.fromEntries(statuses), { 401: FAILURE_BURST, 429: 1000 - FAILURE_BURST });
  assert.equal(last!.headers['retry-after'], '6');
  assert.match(last!.json.error as string, /too many failed requests from 203\.0\.113\.66/);

  assert.equal((await f.send('GET', 'status', '', { clientIp: PHONE })).status, 200, 'another address is unaffected');
  assert.equal((await f.send('GET', 'status', '', { key: wrongSecret, clientIp: attacker })).status, 429, 'still out of budget');
  f.clock.now += 6_000;
  assert.equal((await f.send('GET', 'status', '', { key: wrongSecret, clientIp: attacker })).status, 401, 'after Retry-After one attempt is allowed again');
  assert.equal((await f.send('GET', 'status', '', { key: wrongSecret, clientIp: attacker })).status, 429, '... and only one');
  assert.equal(f.logs.filter((line) => /rate-limited/.test(line.msg as string)).length, 1, 'one log line, not a thousand');
});

test('junk sent from the owner\'s address does not lock out the owner\'s signed requests', async (t) => {
  const f = await fixture(t);
  const used = f.signed('GET', 'status');
  assert.equal((await f.api.handle(used, f.backend)).status, 200);
  const junk: AdminHttpRequest[] = [
    { ...f.signed('GET', 'status'), authorization: undefined },
    { ...f.signed('GET', 'status'), authorization: 'HOMEPORT-HMAC key=nonsense' },
    f.signed('GET', 'status', '', { key: { id: 'abcdefabcdef', secret: f.admin.secret } }),
    f.signed('GET', 'status', '', { key: { id: f.admin.id, secret: 'E'.repeat(43) } }),
    f.signed('GET', 'status', '', { signedAt: T0 - 3_600_000 }),
    used, // a replay
    f.signed('POST', 'whitelist', '{"cidr":"192.0.2.1"}', { overrides: { body: Buffer.from('{"cidr":"0.0.0.0/8"}') } }),
  ];
  const answers: Response[] = [];
  for (let i = 0; i < 30; i++) answers.push(await handle(f, junk[i % junk.length]!));
  assert.ok(answers.slice(0, FAILURE_BURST).every((answer) => answer.status === 401), 'refused while budget is left');
  const limited = answers.slice(FAILURE_BURST);
  assert.ok(limited.every((answer) => answer.status === 429), limited.map((answer) => answer.status).join());
  assert.equal(new Set(limited.map((answer) => answer.body)).size, 1, 'the same answer whichever check failed');
  assert.ok(limited.every((answer) => answer.headers['retry-after'] === '6' && answer.headers['www-authenticate'] === undefined));

  const status = await f.send('GET', 'status');
  assert.equal(status.status, 200, status.body);
  const added = await f.send('POST', 'allow-me');
  assert.equal(added.status, 201, added.body);
  assert.equal((added.json.entry as ApiWhitelistEntry).cidr, `${PHONE}/32`);
  assert.equal((await f.send('GET', 'status', '', { key: f.reader })).status, 200, 'another key of the owner too');
  const forbidden = await f.send('POST', 'allow-me', '', { key: f.reader });
  assert.equal(forbidden.status, 403, 'a signed request is told what is wrong with it');
  assert.equal((await handle(f, junk[3]!)).status, 429, 'junk still gets 429');
});

test('IPv6 clients share a failure budget per /64; IPv4 addresses each have their own', async (t) => {
  const f = await fixture(t);
  assert.equal(failureBucket('2001:db8:1:2:a:b:c:d'), '2001:db8:1:2::/64');
  assert.equal(failureBucket('203.0.113.7'), '203.0.113.7');
  const wrongSecret = { id: f.admin.id, secret: 'F'.repeat(43) };
  const junk = (clientIp: string): Promise<Response> => f.send('GET', 'status', '', { key: wrongSecret, clientIp });
  for (let i = 0; i < FAILURE_BURST / 2; i++) {
    assert.equal((await junk('2001:db8:1:2::a')).status, 401);
    assert.equal((await junk('2001:db8:1:2::b')).status, 401);
  }
  const limited = await junk('2001:db8:1:2:ffff::1');
  assert.equal(limited.status, 429, 'a third address in the same /64 has no budget left');
  assert.match(limited.json.error as string, /too many failed requests from 2001:db8:1:2::\/64/);
  assert.equal((await junk('2001:db8:1:3::a')).status, 401, 'the next /64 is another subscriber');
  assert.equal((await f.send('GET', 'status', '', { clientIp: '2001:db8:1:2::a' })).status, 200, 'signed requests still pass');

  for (let i = 0; i < FAILURE_BURST; i++) assert.equal((await junk('203.0.113.1')).status, 401);
  assert.equal((await junk('203.0.113.1')).status, 429);
  assert.equal((await junk('203.0.113.2')).status, 401, 'the IPv4 neighbour is unaffected');
});

test('networks broader than /8 (IPv4) or /32 (IPv6) are refused: they belong in the config file', async (t) => {
  const f = await fixture(t);
  const refused = ['0.0.0.0/0', '10.0.0.0/7', '128.0.0.0/1', '::/0', '2000::/3', '2001:db8::/31', '::ffff:0.0.0.0/96'];
  for (const [index, cidr] of refused.entries()) {
    const answer = await f.send('POST', 'whitelist', JSON.stringify({ cidr }), { clientIp: `100.64.1.${index}` });
    assert.equal(answer.status, 400, `${cidr}: ${answer.body}`);
    assert.match(answer.json.error as string, /^cidr \S+ is too broad: the admin API adds IPv[46] networks of \/(8|32) or narrower; put a wider entry in the config file's whitelist\.allow by hand$/, cidr);
  }
  assert.equal(f.backend.entries.size, 0);
  for (const cidr of ['10.0.0.0/8', '2001:db8::/32', '192.0.2.1']) {
    const answer = await f.send('POST', 'whitelist', JSON.stringify({ cidr }));
    assert.equal(answer.status, 201, `${cidr}: ${answer.body}`);
  }
  assert.deepEqual([...f.backend.entries.keys()], ['10.0.0.0/8', '2001:db8::/32', '192.0.2.1/32']);
});

test('only failures spend the budget: many good requests in a row all succeed', async (t) => {
  const f = await fixture(t);
  for (let i = 0; i < FAILURE_BURST * 3; i++) assert.equal((await f.send('GET', 'whitelist')).status, 200);
  // a backend refusal (404 for an entry that is not there) is not the client's failure either
  for (let i = 0; i < FAILURE_BURST * 2; i++) assert.equal((await f.send('DELETE', 'whitelist/192.0.2.1')).status, 404);
  assert.equal((await f.send('GET', 'status')).status, 200);
});

test('allow-me adds the caller\'s own address: IPv4, IPv6 and IPv4-mapped', async (t) => {
  const f = await fixture(t);
  const cases: [string, string][] = [
    ['198.51.100.7', '198.51.100.7/32'],
    ['2001:db8:0:0::42', '2001:db8::42/128'],
    ['::ffff:192.0.2.44', '192.0.2.44/32'],
  ];
  for (const [clientIp, cidr] of cases) {
    const response = await f.send('POST', 'allow-me', '', { clientIp });
    assert.equal(response.status, 201, response.body);
    const entry = response.json.entry as ApiWhitelistEntry;
    assert.equal(entry.cidr, cidr);
    assert.equal(entry.note, 'allow-me');
    assert.equal(entry.expires, new Date(T0 + 24 * HOUR).toISOString(), 'default allow-me ttl');
  }
  const custom = await f.send('POST', 'allow-me', JSON.stringify({ ttl: '2h', note: 'hotel' }), { clientIp: '198.51.100.8' });
  assert.deepEqual([(custom.json.entry as ApiWhitelistEntry).note, (custom.json.entry as ApiWhitelistEntry).expires], ['hotel', new Date(T0 + 2 * HOUR).toISOString()]);
});

test('every change is logged with key id and client; no secret or Authorization header in the log', async (t) => {
  const f = await fixture(t);
  await f.send('POST', 'whitelist', JSON.stringify({ cidr: '192.0.2.0/24', note: 'lab' }));
  await f.send('DELETE', 'whitelist/192.0.2.0%2F24');
  await f.send('GET', 'status', '', { key: { id: f.admin.id, secret: 'D'.repeat(43) } });
  const added = f.logs.find((line) => line.msg === 'admin: whitelist entry added');
  assert.deepEqual([added?.keyId, added?.client, added?.cidr, added?.target], [f.admin.id, PHONE, '192.0.2.0/24', '/api/whitelist']);
  const removed = f.logs.find((line) => line.msg === 'admin: whitelist entry removed');
  assert.deepEqual([removed?.keyId, removed?.client, removed?.cidr], [f.admin.id, PHONE, '192.0.2.0/24']);
  const refused = f.logs.find((line) => line.msg === 'admin request refused');
  assert.deepEqual([refused?.keyId, refused?.client, refused?.status], [f.admin.id, PHONE, 401]);
  const text = JSON.stringify(f.logs);
  for (const secret of [f.admin.secret, f.reader.secret, 'D'.repeat(43), 'HOMEPORT-HMAC key=']) assert.ok(!text.includes(secret), secret);
});

test('a backend that throws answers 500 and the API keeps serving', async (t) => {
  const f = await fixture(t);
  f.backend.list = () => Promise.reject(new Error('disk on fire'));
  const failed = await f.send('GET', 'whitelist');
  assert.deepEqual([failed.status, failed.json.error], [500, 'internal error; see the server log']);
  assert.equal((await f.send('GET', 'status')).status, 200);
});
