import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyStore } from '../../src/admin/key-store.js';
import { parseAdminKey } from '../../src/common/admin-key.js';
import { runCli } from '../helpers/cli.js';
import { captureLogs } from '../helpers/logs.js';

const AGENT_CONFIG = `
[agent]
name = "home"
listen = "127.0.0.1:0"
[[route]]
target = "http://127.0.0.1:8096"
`;

const RENDEZVOUS_CONFIG = `
[rendezvous]
stateDir = "./rv-state"
[[agent]]
name = "home"
secret = "home-secret-0123456789"
`;

async function configFile(t: { after(fn: () => Promise<void>): void }, text: string): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-keys-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'homeport.toml');
  await writeFile(file, text);
  return { dir, file };
}

test('keygen on an agent config: prints <id>:<secret> once, stores it 0600 in the agent\'s stateDir with both scopes', async (t) => {
  const { dir, file } = await configFile(t, AGENT_CONFIG);
  const run = await runCli(['keygen', '--config', file, '--note', 'phone']);
  assert.equal(run.code, 0, run.stderr);
  const printed = parseAdminKey(run.stdout);
  assert.ok(printed.ok, `stdout is just the key: ${run.stdout}`);
  assert.equal(run.stdout, `${printed.value.id}:${printed.value.secret}\n`);
  assert.match(run.stderr, /New agent admin key [0-9a-f]{12} \(status:read, whitelist:write\) stored in .*state\/admin-keys\.json/);
  assert.match(run.stderr, /only time the secret is shown/);
  assert.ok(!run.stderr.includes(printed.value.secret));

  const storeFile = join(dir, 'state', 'admin-keys.json');
  assert.equal((await stat(storeFile)).mode & 0o777, 0o600);
  const stored = await (await KeyStore.open(storeFile, captureLogs().logger)).lookup(printed.value.id);
  assert.equal(stored?.secret, printed.value.secret, 'the printed key verifies with the store');
  assert.deepEqual(stored?.scopes, ['status:read', 'whitelist:write']);
  assert.equal(stored?.note, 'phone');
});

test('keygen, keys list and keys revoke on a rendezvous config use the rendezvous\'s stateDir', async (t) => {
  const { dir, file } = await configFile(t, RENDEZVOUS_CONFIG);
  const storeFile = join(dir, 'rv-state', 'admin-keys.json');
  const empty = await runCli(['keys', 'list', '--config', file]);
  assert.equal(empty.code, 0, empty.stderr);
  assert.match(empty.stdout, /no admin keys in .*rv-state\/admin-keys\.json; create one with: homeport keygen --config/);

  const reader = await runCli(['keygen', '--config', file, '--scopes', 'status:read', '--note', 'wall tablet']);
  const writer = await runCli(['keygen', '--config', file]);
  assert.equal(reader.code, 0, reader.stderr);
  assert.match(reader.stderr, /New rendezvous admin key/);
  const readerKey = parseAdminKey(reader.stdout);
  const writerKey = parseAdminKey(writer.stdout);
  assert.ok(readerKey.ok && writerKey.ok);

  const listed = await runCli(['keys', 'list', '--config', file]);
  assert.equal(listed.code, 0, listed.stderr);
  const lines = listed.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^ID\s+SCOPES\s+CREATED\s+NOTE$/);
  assert.match(lines[1]!, new RegExp(`^${readerKey.value.id}  status:read\\s+\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ  wall tablet$`));
  assert.match(lines[2]!, new RegExp(`^${writerKey.value.id}  status:read,whitelist:write  \\S+Z$`));
  for (const secret of [readerKey.value.secret, writerKey.value.secret]) {
    assert.ok(!listed.stdout.includes(secret) && !listed.stderr.includes(secret), 'list never prints secrets');
  }

  const revoked = await runCli(['keys', 'revoke', readerKey.value.id, '--config', file]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.match(revoked.stdout, new RegExp(`revoked key ${readerKey.value.id} \\(wall tablet\\)`));
  const store = await KeyStore.open(storeFile, captureLogs().logger);
  assert.equal(await store.lookup(readerKey.value.id), undefined);
  assert.ok(await store.lookup(writerKey.value.id));

  const again = await runCli(['keys', 'revoke', readerKey.value.id, '--config', file]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, new RegExp(`no key ${readerKey.value.id} in .*admin-keys\\.json; "homeport keys list --config .*" shows the ids`));
});

test('a corrupt key file: keys list, keygen and revoke exit 2 naming the file and where, never quoting it', async (t) => {
  const { dir, file } = await configFile(t, AGENT_CONFIG);
  const secret = 'aHycSEKz71qv0dT3bXo9mWc4NzLr8kPeUs2fGiJh5Ya';
  const storeFile = join(dir, 'state', 'admin-keys.json');
  await mkdir(join(dir, 'state'));
  const corrupt = `{"version": 1, "keys": [{"id": "0123456789ab", "secret": ${secret}}]}`;
  await writeFile(storeFile, corrupt, { mode: 0o600 });
  for (const args of [['keys', 'list'], ['keygen'], ['keys', 'revoke', '0123456789ab']]) {
    const run = await runCli([...args, '--config', file]);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.equal(run.stderr, `${storeFile}: not valid JSON at line 1, column 58; fix it, or delete it and create keys again with "homeport keygen"\n`);
    assert.ok(!run.stdout.includes(secret.slice(0, 4)));
  }
  assert.equal(await readFile(storeFile, 'utf8'), corrupt, 'left as it was');
});

const NOBODY = 65_534;

test('sudo homeport keygen/keys revoke keep the key file the service user\'s, so the daemon can still read it', { skip: process.getuid?.() !== 0 && 'needs root' }, async (t) => {
  const { dir, file } = await configFile(t, AGENT_CONFIG);
  const state = join(dir, 'state');
  await mkdir(state, { mode: 0o700 });
  await chown(dir, NOBODY, NOBODY);
  await chown(state, NOBODY, NOBODY); // as the service installer leaves it
  const storeFile = join(state, 'admin-keys.json');
  const owner = async (): Promise<number[]> => { const info = await stat(storeFile); return [info.uid, info.gid, info.mode & 0o777]; };
  const readableByNobody = (): boolean => spawnSync('cat', [storeFile], { uid: NOBODY, gid: NOBODY, stdio: 'ignore' }).status === 0;

  const created = await runCli(['keygen', '--config', file]);
  assert.equal(created.code, 0, created.stderr);
  assert.deepEqual(await owner(), [NOBODY, NOBODY, 0o600]);
  assert.ok(readableByNobody(), 'the service user reads its keys');
  const key = parseAdminKey(created.stdout);
  assert.ok(key.ok);
  const revoked = await runCli(['keys', 'revoke', key.value.id, '--config', file]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.deepEqual(await owner(), [NOBODY, NOBODY, 0o600]);
  assert.ok(readableByNobody());
});

test('usage mistakes exit 2 with one line naming the problem', async (t) => {
  const { file } = await configFile(t, AGENT_CONFIG);
  const cases: [string[], RegExp][] = [
    [['keygen', '--config', file, '--scopes', 'status:write'], /--scopes "status:write" is not a scope/],
    [['keygen', '--config', file, '--note', 'x'.repeat(300)], /--note is 300 characters long/],
    [['keygen'], /--config <file> is required/],
    [['keys', '--config', file], /say "list" or "revoke <id>"/],
    [['keys', 'rotate', '--config', file], /unknown action "rotate"/],
    [['keys', 'revoke', '--config', file], /name the key to revoke/],
    [['keys', 'revoke', '0123456789ab:secret', '--config', file], /is not a key id/],
    [['keys', 'list', 'extra', '--config', file], /unexpected argument "extra"/],
  ];
  for (const [args, expected] of cases) {
    const run = await runCli(args);
    assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, expected, args.join(' '));
    assert.equal(run.stderr.trim().split('\n').length, 1, args.join(' '));
  }
});
