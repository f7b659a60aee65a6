import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDuration, formatDuration } from '../src/common/duration.js';
import { writeFileAtomic } from '../src/common/atomic-write.js';
import { parseHostPort, isHostnameOrIp } from '../src/config/address.js';
import { parseRange } from '../src/demo/range.js';

test('parseDuration reads the units users write', () => {
  const table: [string, number | undefined][] = [
    ['0', 0], ['500ms', 500], ['5s', 5000], ['2m', 120_000], ['24h', 86_400_000], ['7d', 604_800_000],
    ['1h30m', 5_400_000], ['1.5s', 1500], [' 30s ', 30_000],
    ['', undefined], ['5', undefined], ['5 s', undefined], ['-5s', undefined], ['5w', undefined], ['s', undefined],
  ];
  for (const [input, expected] of table) {
    const result = parseDuration(input);
    if (expected === undefined) assert.equal(result.ok, false, `"${input}" should be refused`);
    else assert.deepEqual(result, { ok: true, value: expected }, `"${input}"`);
  }
});

test('formatDuration writes compact durations', () => {
  assert.equal(formatDuration(250), '250ms');
  assert.equal(formatDuration(90_000), '1m30s');
  assert.equal(formatDuration(86_400_000 + 3_600_000), '1d1h');
});

test('parseHostPort accepts IPv4 and bracketed IPv6, refuses the rest with a hint', () => {
  assert.deepEqual(parseHostPort('0.0.0.0:25305'), { ok: true, value: { host: '0.0.0.0', port: 25305 } });
  assert.deepEqual(parseHostPort('[::]:443'), { ok: true, value: { host: '::', port: 443 } });
  assert.deepEqual(parseHostPort('[2001:db8::1]:8443'), { ok: true, value: { host: '2001:db8::1', port: 8443 } });
  assert.equal(parseHostPort('127.0.0.1:0').ok, false);
  assert.deepEqual(parseHostPort('127.0.0.1:0', { allowPortZero: true }), { ok: true, value: { host: '127.0.0.1', port: 0 } });
  for (const bad of ['25305', '::1:80', 'localhost:80', '1.2.3.4:0', '1.2.3.4:65536', '[1.2.3.4]:80', '1.2.3.4:']) {
    const result = parseHostPort(bad);
    assert.equal(result.ok, false, bad);
    if (!result.ok) assert.match(result.error, /write "0\.0\.0\.0:25305"|port|brackets/, bad);
  }
});

test('isHostnameOrIp accepts names, wildcards and IPs', () => {
  for (const good of ['nas.example.com', 'localhost', '*.example.com', '203.0.113.7', '::1']) assert.ok(isHostnameOrIp(good), good);
  for (const bad of ['', 'exa mple.com', '-bad.com', 'a..b', 'foo.*.com', 'http://x']) assert.ok(!isHostnameOrIp(bad), bad);
});

test('parseRange follows RFC 9110 for a 1000-byte resource', () => {
  const table: [string | undefined, ReturnType<typeof parseRange>][] = [
    [undefined, undefined],
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=900-', { start: 900, end: 999 }],
    ['bytes=-100', { start: 900, end: 999 }],
    ['bytes=-5000', { start: 0, end: 999 }],
    ['bytes=990-5000', { start: 990, end: 999 }],
    ['bytes=1000-', 'unsatisfiable'],
    ['bytes=-0', 'unsatisfiable'],
    ['bytes=5-1', undefined],
    ['bytes=0-1,5-6', undefined],
    ['items=0-1', undefined],
    ['bytes=-', undefined],
  ];
  for (const [header, expected] of table) assert.deepEqual(parseRange(header, 1000), expected, String(header));
});

test('writeFileAtomic replaces the file whole, with the mode asked, and leaves no temp file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hp-atomic-'));
  const file = join(dir, 'state.json');
  await writeFile(file, 'old');
  await writeFileAtomic(file, '{"new":true}', 0o600);
  assert.equal(await readFile(file, 'utf8'), '{"new":true}');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(await readdir(dir), ['state.json']);
  await assert.rejects(writeFileAtomic(join(dir, 'missing', 'x.json'), 'x'));
  assert.deepEqual(await readdir(dir), ['state.json']);
});
