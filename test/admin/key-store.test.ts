import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, chown, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyStore, keyStorePath, parseKeyFile } from '../../src/admin/key-store.js';
import { jsonErrorOffset } from '../../src/common/json-position.js';
import { ConfigError } from '../../src/common/config-error.js';
import { parseScopes } from '../../src/admin/scopes.js';
import { captureLogs } from '../helpers/logs.js';

async function scratch(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-keys-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const VALID_KEY = { id: '0123456789ab', secret: 'A'.repeat(43), scopes: ['status:read'], created: '2030-01-01T00:00:00.000Z' };

test('a missing file means no keys; keygen creates the state folder and a 0600 file', async (t) => {
  const dir = await scratch(t);
  const file = keyStorePath(join(dir, 'state'));
  const store = await KeyStore.open(file, captureLogs().logger);
  assert.deepEqual(await store.list(), []);
  assert.equal(await store.lookup('0123456789ab'), undefined);

  const added = await store.add({ scopes: ['status:read', 'whitelist:write'], note: 'phone' });
  assert.ok(added.ok, added.ok ? '' : added.error);
  assert.match(added.value.id, /^[0-9a-f]{12}$/);
  assert.match(added.value.secret, /^[A-Za-z0-9_-]{43}$/);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(await store.lookup(added.value.id), added.value);
  const listed = await store.list();
  assert.deepEqual(listed, [{ id: added.value.id, scopes: ['status:read', 'whitelist:write'], note: 'phone', created: added.value.created }]);
  assert.ok(!JSON.stringify(listed).includes(added.value.secret), 'list never returns secrets');
});

test('a running store sees keys added and revoked by another process at the next lookup', async (t) => {
  const file = keyStorePath(await scratch(t));
  const daemon = await KeyStore.open(file, captureLogs().logger);
  const cli = await KeyStore.open(file, captureLogs().logger);
  const first = await cli.add({ scopes: ['status:read'] });
  assert.ok(first.ok);
  assert.equal((await daemon.lookup(first.value.id))?.secret, first.value.secret);
  const second = await cli.add({ scopes: ['whitelist:write'] });
  assert.ok(second.ok);
  assert.notEqual(second.value.id, first.value.id);

  const revoked = await cli.revoke(first.value.id);
  assert.ok(revoked.ok);
  assert.equal(revoked.value?.id, first.value.id);
  assert.equal(await daemon.lookup(first.value.id), undefined, 'revocation counts from the next lookup');
  assert.deepEqual((await daemon.list()).map((key) => key.id), [second.value.id]);

  const unknown = await cli.revoke('ffffffffffff');
  assert.deepEqual(unknown, { ok: true, value: undefined });
});

test('an unreadable or corrupt file refuses to open, naming the file', async (t) => {
  const dir = await scratch(t);
  const file = keyStorePath(dir);
  for (const text of ['{not json', '{"version":1}', '{"version":2,"keys":[]}', JSON.stringify({ version: 1, keys: [{ ...VALID_KEY, scopes: ['root'] }] })]) {
    await writeFile(file, text, { mode: 0o600 });
    await assert.rejects(KeyStore.open(file, captureLogs().logger), (error: Error) => error instanceof ConfigError && error.message.startsWith(`${file}: `), text);
  }
  if (process.getuid?.() !== 0) { // root reads anything
    await writeFile(file, JSON.stringify({ version: 1, keys: [] }));
    await chmod(file, 0o000);
    await assert.rejects(KeyStore.open(file, captureLogs().logger), /cannot be read \(EACCES\)/);
  }
});

test('a file that is not JSON is refused by position, without quoting it: the text may be a secret', async (t) => {
  const file = keyStorePath(await scratch(t));
  const secret = 'aHycSEKz71qv0dT3bXo9mWc4NzLr8kPeUs2fGiJh5Ya';
  const text = `{\n  "version": 1,\n  "keys": [\n    { "id": "0123456789ab", "secret": ${secret} }\n  ]\n}\n`;
  await writeFile(file, text, { mode: 0o600 });
  const error = await KeyStore.open(file, captureLogs().logger).then(() => undefined, (thrown: unknown) => thrown);
  assert.ok(error instanceof ConfigError, 'a config error: the CLI exits 2, systemd does not restart the daemon');
  assert.equal(error.message, `${file}: not valid JSON at line 4, column 39; fix it, or delete it and create keys again with "homeport keygen"`);
  for (let start = 0; start + 4 <= secret.length; start++) assert.ok(!error.message.includes(secret.slice(start, start + 4)), 'no part of the secret');
});

test('jsonErrorOffset: where JSON.parse gives up, or -1', () => {
  const cases: [string, number][] = [
    ['{"a":1}', -1], [' [1, -2.5e3, "x\\u00e9\\n", true, false, null, {}, []] ', -1], ['"only"', -1],
    ['', 0], ['   ', 3], ['{"a":1', 6], ['{"a":1,}', 7], ['{"a" 1}', 5], ['[1,2] x', 6], ['{"a":01}', 6],
    ['{"a":tru}', 5], ['[1 2]', 3], ['{a:1}', 1], ["{'a':1}", 1], ['{"a":"b\u0001"}', 5], ['{"a":"\\x"}', 5],
    ['[1,]', 3], ['{"a":1]', 6], ['\ufeff{}', 0], ['[-]', 1], ['[.5]', 1], ['{"a":NaN}', 5],
    ['['.repeat(100_000), 100_000],
  ];
  for (const [text, offset] of cases) {
    const label = JSON.stringify(text.slice(0, 20));
    assert.equal(jsonErrorOffset(text), offset, label);
    assert.equal(offset === -1, (() => { try { JSON.parse(text); return true; } catch { return false; } })(), `${label}: agrees with JSON.parse`);
    const positioned = (() => { try { JSON.parse(text); return undefined; } catch (error) { return / at position (\d+)/.exec((error as Error).message)?.[1]; } })();
    // a bad string or number is named where it starts, V8 names the bad character inside it
    if (positioned !== undefined && !/["\d-]/.test(text[offset] ?? '')) assert.equal(offset, Number(positioned), `${label}: the position V8 names`);
  }
});

const NOBODY = 65_534;
const asRoot = { skip: process.getuid?.() !== 0 && 'only root can give files away' };

test('run as root, the store keeps the service user\'s ownership of the file and of a folder it creates', asRoot, async (t) => {
  const dir = await scratch(t);
  await chown(dir, NOBODY, NOBODY);
  const file = keyStorePath(join(dir, 'state', 'nested'));
  const store = await KeyStore.open(file, captureLogs().logger);
  const key = await store.add({ scopes: ['status:read'] });
  assert.ok(key.ok, key.ok ? '' : key.error);
  for (const path of [join(dir, 'state'), join(dir, 'state', 'nested'), file]) {
    const info = await stat(path);
    assert.deepEqual([info.uid, info.gid], [NOBODY, NOBODY], path);
  }
  assert.equal((await stat(file)).mode & 0o777, 0o600);

  await chown(file, 4242, 4243); // the file's own owner wins over the folder's
  const revoked = await store.revoke(key.value.id);
  assert.ok(revoked.ok && revoked.value);
  const info = await stat(file);
  assert.deepEqual([info.uid, info.gid], [4242, 4243]);
});

test('a file broken while running refuses every key until fixed, and no change is written over it', async (t) => {
  const file = keyStorePath(await scratch(t));
  const { logger, lines } = captureLogs();
  const store = await KeyStore.open(file, logger);
  const key = await store.add({ scopes: ['status:read'] });
  assert.ok(key.ok);
  const good = await readFile(file, 'utf8');

  await writeFile(file, good.replace('"status:read"', '"status:reed"'));
  assert.equal(await store.lookup(key.value.id), undefined, 'fail closed, not the previous keys');
  assert.ok(lines.some((line) => line.level === 50 && /admin key file rejected/.test(line.msg as string) && /status:read/.test(line.problem as string)));
  const refused = await store.add({ scopes: ['status:read'] });
  assert.ok(!refused.ok && /not changing it until it is fixed/.test(refused.error));

  await writeFile(file, good);
  assert.equal((await store.lookup(key.value.id))?.id, key.value.id);
});

test('secrets never reach the log; a file others can read is warned about', async (t) => {
  const file = keyStorePath(await scratch(t));
  const { logger, lines } = captureLogs();
  const store = await KeyStore.open(file, logger);
  const key = await store.add({ scopes: ['status:read'], note: 'laptop' });
  assert.ok(key.ok);
  await store.revoke(key.value.id);
  assert.ok(lines.some((line) => line.msg === 'admin key added' && line.keyId === key.value.id));
  assert.ok(!JSON.stringify(lines).includes(key.value.secret));

  await store.add({ scopes: ['status:read'] });
  await chmod(file, 0o644);
  await KeyStore.open(file, logger);
  assert.ok(lines.some((line) => line.level === 40 && /can be read by other users/.test(line.msg as string)));
});

test('notes are one short line', async (t) => {
  const store = await KeyStore.open(keyStorePath(await scratch(t)), captureLogs().logger);
  const long = await store.add({ scopes: ['status:read'], note: 'x'.repeat(201) });
  assert.ok(!long.ok && /keep it to 200/.test(long.error));
  const multiline = await store.add({ scopes: ['status:read'], note: 'a\nb' });
  assert.ok(!multiline.ok && /one line/.test(multiline.error));
  assert.deepEqual(await store.list(), []);
});

test('parseKeyFile: strict fields, ids, secrets, scopes, dates, no repeated id', () => {
  const cases: [unknown, RegExp][] = [
    [{ ...VALID_KEY, id: '0123456789AB' }, /keys\[0\]\.id must be 12 lower-case hex digits/],
    [{ ...VALID_KEY, secret: 'short' }, /\.secret of key 0123456789ab must be 43 base64url characters/],
    [{ ...VALID_KEY, scopes: [] }, /\.scopes of key 0123456789ab must be a non-empty list/],
    [{ ...VALID_KEY, created: 'yesterday' }, /\.created of key 0123456789ab must be an ISO 8601 date/],
    [{ ...VALID_KEY, expires: '2031-01-01' }, /keys\[0\]\.expires is not a known field/],
    [{ ...VALID_KEY, note: 7 }, /\.note of key 0123456789ab must be a string/],
  ];
  for (const [key, expected] of cases) {
    const parsed = parseKeyFile(JSON.stringify({ version: 1, keys: [key] }), 'k.json');
    assert.ok(!parsed.ok && expected.test(parsed.error) && parsed.error.startsWith('k.json: '), `${JSON.stringify(key)}: ${parsed.ok ? 'accepted' : parsed.error}`);
  }
  const twice = parseKeyFile(JSON.stringify({ version: 1, keys: [VALID_KEY, VALID_KEY] }), 'k.json');
  assert.ok(!twice.ok && /keys\[1\] repeats the id 0123456789ab/.test(twice.error));
  assert.deepEqual(parseKeyFile(JSON.stringify({ version: 1, keys: [VALID_KEY] }), 'k.json'), { ok: true, value: [VALID_KEY] });
});

test('parseScopes: known names, comma-separated, duplicates folded', () => {
  assert.deepEqual(parseScopes('status:read,whitelist:write'), { ok: true, value: ['status:read', 'whitelist:write'] });
  assert.deepEqual(parseScopes(' whitelist:write , whitelist:write'), { ok: true, value: ['whitelist:write'] });
  const bad = parseScopes('status:read,admin');
  assert.ok(!bad.ok && /"admin" is not a scope; write one or both of status:read, whitelist:write/.test(bad.error));
  assert.ok(!parseScopes('').ok);
});
