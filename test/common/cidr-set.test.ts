import { test } from 'node:test';
import assert from 'node:assert/strict';
import ipaddr from 'ipaddr.js';
import { parseCidr } from '../../src/common/cidr.js';
import { CidrSet, type CidrSetEntry } from '../../src/common/cidr-set.js';

function entry(cidr: string, extra: { note?: string; expires?: Date } = {}): CidrSetEntry {
  const parsed = parseCidr(cidr);
  if (!parsed.ok) throw new Error(`${cidr} ${parsed.error}`);
  return { cidr: parsed.value, ...extra };
}

const NOW = Date.parse('2030-01-01T00:00:00Z');

test('CidrSet matches IPv4, IPv6 and mapped IPv6, most specific entry first', () => {
  const set = new CidrSet([
    entry('10.0.0.0/8', { note: 'lan' }),
    entry('10.1.0.0/16', { note: 'office' }),
    entry('192.168.1.7'),
    entry('2001:db8::/32'),
    entry('2001:db8:1::/48'),
    entry('::1'),
    entry('fe80::/10'),
  ]);
  const cases: [address: string, matched: string | undefined][] = [
    ['10.2.3.4', '10.0.0.0/8'],
    ['10.1.2.3', '10.1.0.0/16'],
    ['10.255.255.255', '10.0.0.0/8'],
    ['11.0.0.1', undefined],
    ['9.255.255.255', undefined],
    ['::ffff:10.1.2.3', '10.1.0.0/16'],
    ['::ffff:192.168.1.7', '192.168.1.7/32'],
    ['::ffff:c0a8:107', '192.168.1.7/32'],
    ['192.168.1.7', '192.168.1.7/32'],
    ['192.168.1.8', undefined],
    ['2001:db8:1:2::5', '2001:db8:1::/48'],
    ['2001:db8:2::1', '2001:db8::/32'],
    ['2001:DB8:0002:0000:0000:0000:0000:0001', '2001:db8::/32'],
    ['2001:db9::1', undefined],
    ['::1', '::1/128'],
    ['::2', undefined],
    ['fe80::1%eth0', 'fe80::/10'],
    ['febf:ffff::1', 'fe80::/10'],
    ['fec0::1', undefined],
    ['not an address', undefined],
    ['', undefined],
    ['010.1.2.3', undefined],
  ];
  for (const [address, matched] of cases) assert.equal(set.match(address, NOW)?.cidr.text, matched, address);
  assert.equal(set.match('10.1.2.3', NOW)?.note, 'office');
  assert.equal(set.size, 7);
});

test('IPv4 ranges cover mapped clients; IPv6 ranges do not', () => {
  const ipv4Everything = new CidrSet([entry('0.0.0.0/0')]);
  assert.ok(ipv4Everything.match('::ffff:203.0.113.9', NOW));
  assert.ok(ipv4Everything.match('203.0.113.9', NOW));
  assert.equal(ipv4Everything.match('2001:db8::1', NOW), undefined);
  const ipv6Everything = new CidrSet([entry('::/0')]);
  assert.ok(ipv6Everything.match('2001:db8::1', NOW));
  assert.equal(ipv6Everything.match('::ffff:203.0.113.9', NOW), undefined);
  assert.equal(ipv6Everything.match('203.0.113.9', NOW), undefined);
});

test('an expired entry stops matching at its expiry and uncovers shorter live ones', () => {
  const expires = new Date(NOW + 1000);
  const set = new CidrSet([entry('10.1.0.0/16', { expires }), entry('10.0.0.0/8', { expires: new Date(NOW + 5000) })]);
  assert.equal(set.match('10.1.0.1', NOW + 999)?.cidr.text, '10.1.0.0/16');
  assert.equal(set.match('10.1.0.1', NOW + 1000)?.cidr.text, '10.0.0.0/8');
  assert.equal(set.match('10.1.0.1', NOW + 5000), undefined);
  assert.equal(new CidrSet([]).match('10.1.0.1', NOW), undefined);
});

test('of duplicate networks the longest-living one counts, in any order', () => {
  const expired = entry('192.0.2.0/24', { note: 'old', expires: new Date(NOW - 1) });
  const permanent = entry('192.0.2.5/24', { note: 'permanent' });
  for (const order of [[expired, permanent], [permanent, expired]]) {
    assert.equal(new CidrSet(order).match('192.0.2.77', NOW)?.note, 'permanent');
  }
});

test('CidrSet agrees with a linear ipaddr.js scan on random lists and addresses', () => {
  let seed = 42; // a fixed seed, so a failure can be reproduced
  const random = (): number => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32;
  const below = (n: number): number => Math.floor(random() * n);
  // A small address space (10.0-3.x.x, 2001:db8:0-3::) so random addresses often fall inside entries.
  const randomIpv4 = (): string => `10.${below(4)}.${below(256)}.${below(256)}`;
  const randomIpv6 = (): string => `2001:db8:${below(4)}:${below(3).toString(16)}::${below(0x10000).toString(16)}`;
  const entries = Array.from({ length: 600 }, () => {
    const ipv4 = random() < 0.5;
    const cidr = ipv4 ? `${randomIpv4()}/${20 + below(13)}` : `${randomIpv6()}/${64 + below(65)}`;
    return entry(cidr, random() < 0.2 ? { expires: new Date(NOW + below(2000) - 1000) } : {});
  });
  const set = new CidrSet(entries);
  const ranges = entries.map((e) => ({ range: ipaddr.parseCIDR(e.cidr.text), expiresMs: e.expires?.getTime() ?? Infinity }));
  let hits = 0;
  for (let i = 0; i < 3000; i++) {
    const roll = random();
    const address = roll < 0.4 ? randomIpv4() : roll < 0.6 ? `::ffff:${randomIpv4()}` : randomIpv6();
    const parsed = ipaddr.process(address);
    const expected = ranges.some(({ range, expiresMs }) => expiresMs > NOW && parsed.kind() === range[0].kind() && parsed.match(range));
    assert.equal(set.match(address, NOW) !== undefined, expected, address);
    if (expected) hits++;
  }
  assert.ok(hits > 300 && hits < 2700, `the test must see both hits and misses (${hits} hits)`);
});
