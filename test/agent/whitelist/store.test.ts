import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { writeFileAtomic } from '../../../src/common/atomic-write.js';
import type { WhitelistEntrySpec } from '../../../src/config/agent-types.js';
import { Whitelist, type WhitelistOptions } from '../../../src/agent/whitelist/store.js';
import { ConfigError } from '../../../src/common/config-error.js';

const T0 = Date.parse('2030-01-01T00:00:00Z');

interface Fixture {
  dir: string;
  file: string;
  logs: Record<string, unknown>[];
  clock: { now: number };
  open(configEntries?: WhitelistEntrySpec[], options?: Partial<WhitelistOptions>): Promise<Whitelist>;
}

async function fixture(t: { after(fn: () => Promise<void>): void }): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-whitelist-'));
  const file = join(dir, 'whitelist.json');
  const logs: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
  const clock = { now: T0 };
  const opened: Whitelist[] = [];
  t.after(async () => {
    for (const whitelist of opened) whitelist.close();
    await rm(dir, { recursive: true, force: true });
  });
  return {
    dir, file, logs, clock,
    async open(configEntries = [], options = {}) {
      const whitelist = await Whitelist.open({ configEntries, file, logger, watch: false, now: () => clock.now, ...options });
      opened.push(whitelist);
      return whitelist;
    },
  };
}

const messages = (logs: Record<string, unknown>[], level: number): string[] =>
  logs.filter((line) => line.level === level).map((line) => String(line.msg));
const WARN = 40;
const ERROR = 50;

/** Resolves on the next 'change', or fails after a few seconds; its timer keeps the test process alive. */
function nextChange(whitelist: Whitelist): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no change event within 5 s')), 5000);
    whitelist.once('change', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

test('config entries alone: a missing file means no runtime entries and creates nothing', async (t) => {
  const f = await fixture(t);
  const whitelist = await f.open([{ cidr: '127.0.0.1/32', note: 'me' }, { cidr: '2001:db8::/32' }]);
  assert.ok(whitelist.allows('127.0.0.1'));
  assert.ok(whitelist.allows('::ffff:127.0.0.1'));
  assert.ok(whitelist.allows('2001:db8:5::1'));
  assert.ok(!whitelist.allows('127.0.0.2'));
  assert.deepEqual(whitelist.entries().map((e) => [e.cidr.text, e.source, e.note]), [
    ['127.0.0.1/32', 'config', 'me'],
    ['2001:db8::/32', 'config', undefined],
  ]);
  assert.deepEqual(await readdir(f.dir), []);
  assert.deepEqual(messages(f.logs, WARN), []);
});

test('runtime entries persist: add writes a versioned file that a new Whitelist reads back', async (t) => {
  const f = await fixture(t);
  const first = await f.open();
  const added = await first.add({ cidr: '203.0.113.5', note: 'phone', ttlMs: 3_600_000 });
  assert.ok(added.ok);
  await first.add({ cidr: '2001:db8:aa::7/48' });
  assert.ok(first.allows('203.0.113.5'));
  assert.ok(first.allows('2001:db8:aa:1::1'));

  assert.deepEqual(JSON.parse(await readFile(f.file, 'utf8')), {
    version: 1,
    entries: [
      { cidr: '203.0.113.5/32', note: 'phone', expires: '2030-01-01T01:00:00.000Z', added: '2030-01-01T00:00:00.000Z' },
      { cidr: '2001:db8:aa::/48', added: '2030-01-01T00:00:00.000Z' },
    ],
  });
  first.close();
  const second = await f.open();
  assert.deepEqual(
    second.entries().map((e) => [e.cidr.text, e.source, e.note, e.expires?.toISOString(), e.added?.toISOString()]),
    [
      ['203.0.113.5/32', 'runtime', 'phone', '2030-01-01T01:00:00.000Z', '2030-01-01T00:00:00.000Z'],
      ['2001:db8:aa::/48', 'runtime', undefined, undefined, '2030-01-01T00:00:00.000Z'],
    ],
  );
  assert.ok(second.allows('203.0.113.5'));
});

test('writes are atomic: no temp file is left behind and the file is private', async (t) => {
  const f = await fixture(t);
  const whitelist = await f.open();
  for (let i = 0; i < 5; i++) assert.ok((await whitelist.add({ cidr: `198.51.100.${i}` })).ok);
  assert.ok((await whitelist.remove('198.51.100.2')).ok);
  assert.deepEqual(await readdir(f.dir), ['whitelist.json']);
  assert.equal((await stat(f.file)).mode & 0o777, 0o600);
  assert.equal(JSON.parse(await readFile(f.file, 'utf8')).entries.length, 4);
});

test('add refreshes an existing network instead of duplicating it', async (t) => {
  const f = await fixture(t);
  const whitelist = await f.open();
  await whitelist.add({ cidr: '192.0.2.0/24', note: 'old' });
  await whitelist.add({ cidr: '192.0.2.9/24', note: 'new', expires: new Date(T0 + 60_000) });
  assert.deepEqual(whitelist.entries().map((e) => [e.cidr.text, e.note, e.expires?.getTime()]), [['192.0.2.0/24', 'new', T0 + 60_000]]);
});

test('add and remove reject bad requests with a message saying why', async (t) => {
  const f = await fixture(t);
  const whitelist = await f.open([{ cidr: '10.0.0.0/8' }]);
  const cases: [Promise<{ ok: boolean; error?: string }>, RegExp][] = [
    [whitelist.add({ cidr: '10.0.0.300' }), /^"10\.0\.0\.300" is not an IP or CIDR: octet 300 is over 255; write e\.g\./],
    [whitelist.add({ cidr: '127.1' }), /2 parts where IPv4 has 4/],
    [whitelist.add({ cidr: '1.2.3.4', ttlMs: 1000, expires: new Date(T0 + 5000) }), /either a lifetime or an expiry date/],
    [whitelist.add({ cidr: '1.2.3.4', ttlMs: -5 }), /not a positive duration/],
    [whitelist.add({ cidr: '1.2.3.4', expires: new Date(T0 - 1) }), /not in the future/],
    [whitelist.remove('10.0.0.0/8'), /^10\.0\.0\.0\/8 comes from the config file's whitelist\.allow; remove it there$/],
    [whitelist.remove('192.0.2.1'), /^192\.0\.2\.1\/32 is not in the runtime whitelist$/],
    [whitelist.remove('0x7f.0.0.1'), /hexadecimal/],
  ];
  for (const [pending, message] of cases) {
    const result = await pending;
    assert.ok(!result.ok);
    assert.match(result.error ?? '', message);
  }
  assert.deepEqual(await readdir(f.dir), [], 'a rejected request writes nothing');
});

test('a corrupt or unreadable file refuses to open, naming the file, the entry and the fix', async (t) => {
  const f = await fixture(t);
  const entries = (...items: unknown[]): string => JSON.stringify({ version: 1, entries: items });
  const cases: [content: string, message: RegExp][] = [
    ['{"version": 1, "entries": [', /not valid JSON \(.+\); fix it, or delete the file to drop all runtime entries/],
    ['[]', /expected \{"version": 1, "entries": \[\.\.\.\]\}/],
    ['{"version": 2, "entries": []}', /version 2 is not supported \(this homeport reads version 1\)/],
    [entries({ cidr: '10.0.0.1' }, { cidr: '010.0.0.1' }), /entries\[1\]\.cidr "010\.0\.0\.1" is not an IP or CIDR: octet "010" has a leading zero.*; fix or remove this entry/],
    [entries({ cidr: '10.0.0.1', expire: '2031-01-01T00:00:00Z' }), /entries\[0\] has an unknown key "expire"; the keys are cidr, note, expires, added/],
    [entries({ cidr: '10.0.0.1', expires: 'tomorrow' }), /entries\[0\]\.expires must be a date such as "2030-01-01T00:00:00Z"/],
    [entries({ note: 'no address' }), /entries\[0\]\.cidr is missing/],
    [entries({ cidr: '10.0.0.1', note: 5 }), /entries\[0\]\.note must be a string/],
    [entries('10.0.0.1'), /entries\[0\] must be an object/],
  ];
  for (const [content, message] of cases) {
    await writeFile(f.file, content);
    await assert.rejects(f.open([{ cidr: '127.0.0.1' }]), (error: Error) => {
      assert.ok(error instanceof ConfigError, 'a file the agent cannot trust is a configuration error (exit code 2)');
      assert.ok(error.message.startsWith(`${f.file}: `), error.message);
      assert.match(error.message, message);
      assert.match(error.message, /homeport will not start with a whitelist it cannot read$/);
      return true;
    });
  }
  await rm(f.file);
  await mkdir(f.file); // a directory where the file should be: readFile fails with EISDIR
  await assert.rejects(f.open(), /whitelist\.json: cannot be read \(EISDIR\); fix its permissions or remove it/);
});

test('an empty whitelist says loudly that everyone is denied, once per transition', async (t) => {
  const f = await fixture(t);
  const whitelist = await f.open();
  const warning = /the whitelist is empty: every connection is denied/;
  assert.equal(messages(f.logs, WARN).filter((m) => warning.test(m)).length, 1);
  assert.ok(!whitelist.allows('127.0.0.1'));
  await whitelist.add({ cidr: '127.0.0.1' });
  await whitelist.remove('127.0.0.1');
  await whitelist.reload();
  assert.equal(messages(f.logs, WARN).filter((m) => warning.test(m)).length, 2);
});

test('expired entries stop matching on time and are pruned from the file', async (t) => {
  const f = await fixture(t);
  const whitelist = await f.open([{ cidr: '10.0.0.0/8' }], { expiryRecheckMs: 20 });
  await whitelist.add({ cidr: '203.0.113.9', ttlMs: 1000 });
  await whitelist.add({ cidr: '203.0.113.10' });
  assert.ok(whitelist.allows('203.0.113.9'));
  f.clock.now = T0 + 999;
  assert.ok(whitelist.allows('203.0.113.9'));
  f.clock.now = T0 + 1000;
  const pruned = nextChange(whitelist);
  assert.ok(!whitelist.allows('203.0.113.9'), 'expired at its expiry, before any pruning');
  assert.ok(whitelist.allows('203.0.113.10'));
  await pruned;
  const file = JSON.parse(await readFile(f.file, 'utf8'));
  assert.deepEqual(file.entries.map((e: { cidr: string }) => e.cidr), ['203.0.113.10/32']);
  assert.ok(f.logs.some((line) => line.msg === 'whitelist entry expired' && line.cidr === '203.0.113.9/32'));
});

test('on a real clock, an expiry says change on the dot and drops the entry from entries() and the file', async (t) => {
  const f = await fixture(t);
  const whitelist = await f.open([], { now: Date.now });
  await whitelist.add({ cidr: '203.0.113.20', ttlMs: 60_000 });
  const added = await whitelist.add({ cidr: '203.0.113.21', ttlMs: 300 }); // earlier: the timer is re-armed
  assert.ok(added.ok);
  const expiresMs = added.value.expires!.getTime();
  await nextChange(whitelist);
  const lateMs = Date.now() - expiresMs;
  assert.ok(lateMs >= 0 && lateMs < 200, `'change' ${lateMs} ms after the expiry`);
  assert.ok(!whitelist.allows('203.0.113.21'));
  assert.deepEqual(whitelist.entries().map((e) => e.cidr.text), ['203.0.113.20/32']);
  const file = JSON.parse(await readFile(f.file, 'utf8'));
  assert.deepEqual(file.entries.map((e: { cidr: string }) => e.cidr), ['203.0.113.20/32']);
});

test('a config entry expiring says change too, although it stays in the list', async (t) => {
  const f = await fixture(t);
  const expires = new Date(Date.now() + 300);
  const whitelist = await f.open([{ cidr: '10.0.0.0/8' }, { cidr: '192.0.2.0/24', expires }], { now: Date.now });
  await nextChange(whitelist);
  const lateMs = Date.now() - expires.getTime();
  assert.ok(lateMs >= 0 && lateMs < 200, `'change' ${lateMs} ms after the expiry`);
  assert.ok(!whitelist.allows('192.0.2.1'));
  assert.deepEqual(await readdir(f.dir), [], 'config entries are not written to the file');
});

test('an expiry weeks away does not overflow the timer; close() stops the timer', async (t) => {
  const f = await fixture(t);
  const warnings: string[] = [];
  const onWarning = (warning: Error): number => warnings.push(warning.name);
  process.on('warning', onWarning);
  t.after(() => void process.off('warning', onWarning));
  const whitelist = await f.open([], { now: Date.now, expiryRecheckMs: Infinity });
  let changes = 0;
  whitelist.on('change', () => changes++);
  await whitelist.add({ cidr: '198.51.100.1', ttlMs: 30 * 24 * 3_600_000 });
  await whitelist.add({ cidr: '198.51.100.2', ttlMs: 100 });
  whitelist.close();
  const before = changes;
  await new Promise((resolve) => setTimeout(resolve, 250));
  assert.deepEqual(warnings, [], 'setTimeout overflows past 2^31 - 1 ms');
  assert.equal(changes, before, 'a closed whitelist neither expires nor writes');
  assert.deepEqual(JSON.parse(await readFile(f.file, 'utf8')).entries.map((e: { cidr: string }) => e.cidr), ['198.51.100.1/32', '198.51.100.2/32']);
});

test('reload picks up external edits, and a change made meanwhile is not overwritten by add', async (t) => {
  const f = await fixture(t);
  const whitelist = await f.open();
  await whitelist.add({ cidr: '192.0.2.1' });
  const external = JSON.parse(await readFile(f.file, 'utf8'));
  external.entries.push({ cidr: '192.0.2.2', note: 'added by hand' });
  await writeFile(f.file, JSON.stringify(external));
  await whitelist.add({ cidr: '192.0.2.3' });
  assert.deepEqual(whitelist.entries().map((e) => e.cidr.text), ['192.0.2.1/32', '192.0.2.2/32', '192.0.2.3/32']);
  assert.ok(whitelist.allows('192.0.2.2'));

  await writeFile(f.file, JSON.stringify({ version: 1, entries: [{ cidr: '192.0.2.4' }] }));
  assert.deepEqual(await whitelist.reload(), { ok: true, value: true });
  assert.deepEqual(await whitelist.reload(), { ok: true, value: false });
  assert.ok(whitelist.allows('192.0.2.4'));
  assert.ok(!whitelist.allows('192.0.2.1'));
  await rm(f.file);
  await whitelist.reload();
  assert.ok(!whitelist.allows('192.0.2.4'), 'a deleted file means no runtime entries');
});

test('the file is watched: external atomic replacements and edits apply live; a corrupt one keeps the old list', async (t) => {
  const f = await fixture(t);
  const whitelist = await f.open([], { watch: true, reloadDebounceMs: 20 });
  let changes = nextChange(whitelist);
  await writeFileAtomic(f.file, JSON.stringify({ version: 1, entries: [{ cidr: '198.51.100.0/24' }, { cidr: '2001:db8::1' }] }));
  await changes;
  assert.ok(whitelist.allows('198.51.100.77'));
  assert.ok(whitelist.allows('2001:db8::1'));

  changes = nextChange(whitelist);
  await writeFileAtomic(f.file, JSON.stringify({ version: 1, entries: [{ cidr: '2001:db8::1' }] }));
  await changes;
  assert.ok(!whitelist.allows('198.51.100.77'), 'refused after removal');
  assert.ok(whitelist.allows('2001:db8::1'));

  const errorsBefore = messages(f.logs, ERROR).length;
  await writeFile(f.file, '{"version": 1, "entries": [{"cidr": "0x7f.0.0.1"}]}');
  while (messages(f.logs, ERROR).length === errorsBefore) await new Promise((resolve) => setTimeout(resolve, 10));
  const error = f.logs.filter((line) => line.level === ERROR).at(-1)!;
  assert.equal(error.msg, 'whitelist file rejected; keeping the previous whitelist');
  assert.match(String(error.problem), /entries\[0\]\.cidr "0x7f\.0\.0\.1" is not an IP or CIDR/);
  assert.ok(whitelist.allows('2001:db8::1'), 'the previous list still holds');
  assert.ok(!whitelist.allows('127.0.0.1'), 'nothing new is let in');

  changes = nextChange(whitelist);
  await writeFile(f.file, '{"version": 1, "entries": [{"cidr": "127.0.0.1"}]}');
  await changes;
  assert.ok(whitelist.allows('127.0.0.1'));
  assert.ok(!whitelist.allows('2001:db8::1'));
});
