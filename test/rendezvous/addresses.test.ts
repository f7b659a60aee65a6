import assert from 'node:assert/strict';
import { test } from 'node:test';
import { normalizeClientAddress } from '../../src/common/cidr.js';
import { formatAddress } from '../../src/common/address.js';
import { AddressAllowList, normalizeIp } from '../../src/rendezvous/addresses.js';
import { TokenBuckets } from '../../src/common/token-buckets.js';

test('normalizeIp: the same text form per address as the agent; anything else is not an address', () => {
  const cases: [string, string | undefined][] = [
    ['198.51.100.2', '198.51.100.2'],
    ['::ffff:198.51.100.2', '198.51.100.2'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['::1', '::1'],
    ['::FFFF:7f00:1', '127.0.0.1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['127.1', undefined],
    ['010.0.0.1', undefined],
    ['', undefined],
    ['example.com', undefined],
    ['0x7f.0.0.1', undefined],
  ];
  for (const [input, expected] of cases) {
    assert.equal(normalizeIp(input), expected, input);
    if (expected !== undefined) assert.equal(normalizeClientAddress(input), expected, `the agent's gate reads ${input} alike`);
  }
  assert.equal(formatAddress({ ip: '2001:db8::1', port: 443 }), '[2001:db8::1]:443');
  assert.equal(formatAddress({ ip: '198.51.100.2', port: 20001 }), '198.51.100.2:20001');
});

test('AddressAllowList: empty allows all; otherwise IPv4, IPv6 and IPv4-mapped clients match their ranges', () => {
  assert.equal(new AddressAllowList([]).allows('203.0.113.7'), true);
  const list = new AddressAllowList(['192.0.2.0/24', '2001:db8:1::/48', '198.51.100.9/32']);
  const cases: [string, boolean][] = [
    ['192.0.2.1', true], ['192.0.3.1', false], ['::ffff:192.0.2.200', true], ['198.51.100.9', true], ['198.51.100.10', false],
    ['2001:db8:1:ffff::1', true], ['2001:db8:2::1', false], ['not-an-ip', false], ['', false],
  ];
  for (const [ip, allowed] of cases) assert.equal(list.allows(ip), allowed, ip);
  assert.ok(new AddressAllowList(['::ffff:10.1.2.3/104']).allows('10.200.0.1'), 'a mapped range is the IPv4 range');
  assert.throws(() => new AddressAllowList(['127.1']), /redirectAllow "127\.1" is not an IP or CIDR/, 'the config loader should have refused it');
});

test('TokenBuckets: a burst, then refill over time, per key; memory stays bounded', () => {
  let now = 0;
  const buckets = new TokenBuckets({ capacity: 3, refillPerSecond: 0.5, now: () => now, maxKeys: 4 });
  assert.deepEqual([1, 2, 3, 4].map(() => buckets.take('a')), [true, true, true, false]);
  assert.equal(buckets.has('a'), false);
  assert.equal(buckets.has('b'), true, 'another key has its own bucket');
  now = 1999;
  assert.equal(buckets.take('a'), false, 'not quite one token back');
  now = 2000;
  assert.equal(buckets.take('a'), true, 'one token after 2 s at 0.5/s');
  now = 60_000;
  assert.deepEqual([1, 2, 3, 4].map(() => buckets.take('a')), [true, true, true, false], 'refills only up to capacity');
  for (const key of ['b', 'c', 'd', 'e', 'f', 'g']) buckets.take(key);
  assert.ok(buckets.size <= 4, `${buckets.size} keys kept`);
});
