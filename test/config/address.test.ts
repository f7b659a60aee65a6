import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHostPort, isHostnameOrIp } from '../../src/config/address.js';

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
