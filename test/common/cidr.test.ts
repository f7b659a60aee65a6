import { test } from 'node:test';
import assert from 'node:assert/strict';
import ipaddr from 'ipaddr.js';
import { normalizeClientAddress, parseCidr } from '../../src/common/cidr.js';

test('parseCidr accepts IPv4, IPv6 and mapped forms and stores them canonically', () => {
  const cases: [input: string, text: string, family: 4 | 6][] = [
    ['192.168.1.0/24', '192.168.1.0/24', 4],
    ['192.168.1.5/24', '192.168.1.0/24', 4],
    ['172.16.5.4/12', '172.16.0.0/12', 4],
    ['10.1.2.3', '10.1.2.3/32', 4],
    ['1.2.3.4/0', '0.0.0.0/0', 4],
    ['255.255.255.255/31', '255.255.255.254/31', 4],
    ['0.0.0.0', '0.0.0.0/32', 4],
    ['2001:db8::/32', '2001:db8::/32', 6],
    ['2001:DB8:0:0:1::/32', '2001:db8::/32', 6],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1/128', 6],
    ['2001:db8:abcd:ef12::/33', '2001:db8:8000::/33', 6],
    ['2001:db8::567b/126', '2001:db8::5678/126', 6],
    ['::1', '::1/128', 6],
    ['::', '::/128', 6],
    ['::/0', '::/0', 6],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0/128', 6],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3/128', 6],
    ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4/128', 6],
    ['2001:db8::ffff:1.2.3.4', '2001:db8::ffff:102:304/128', 6],
    ['::1.2.3.4', '::102:304/128', 6],
    ['fe80::1%eth0', 'fe80::1/128', 6],
    ['fe80::1%eth0/64', 'fe80::/64', 6],
    ['::ffff:1.2.3.4', '1.2.3.4/32', 4],
    ['::ffff:1.2.3.99/120', '1.2.3.0/24', 4],
    ['::FFFF:10.9.8.7/104', '10.0.0.0/8', 4],
    ['::ffff:7f00:1', '127.0.0.1/32', 4],
    ['0:0:0:0:0:ffff:c0a8:0101', '192.168.1.1/32', 4],
    ['::ffff:1.2.3.4/64', '::/64', 6], // wider than the mapped range: still an IPv6 network
  ];
  for (const [input, text, family] of cases) {
    const parsed = parseCidr(input);
    assert.ok(parsed.ok, `${input}: ${parsed.ok ? '' : parsed.error}`);
    assert.equal(parsed.value.text, text, input);
    assert.equal(parsed.value.family, family, input);
    assert.equal(parsed.value.prefix, Number(text.split('/')[1]), input);
  }
});

test('parseCidr rejects what ipaddr.js is lax about, with a reason', () => {
  const cases: [input: string, reason: RegExp][] = [
    ['127.1', /2 parts where IPv4 has 4; write all four octets/],
    ['1.2.3', /3 parts/],
    ['0x7f.0.0.1', /"0x7f" is hexadecimal; write each IPv4 octet in decimal/],
    ['010.0.0.1', /octet "010" has a leading zero, which some tools read as octal/],
    ['0177.0.0.1', /leading zero/],
  ];
  for (const [input, reason] of cases) {
    assert.ok(ipaddr.isValid(input), `ipaddr.js accepts ${input}, which is why we must not`);
    const parsed = parseCidr(input);
    assert.ok(!parsed.ok, `${input} must be rejected`);
    assert.match(parsed.error, reason, input);
    assert.match(parsed.error, /^is not an IP or CIDR: /, input);
  }
});

test('parseCidr rejects malformed input and says how to write it', () => {
  const notAnAddress = /^is not an IP or CIDR; write e\.g\. "192\.168\.1\.0\/24" or "2001:db8::\/32"$/;
  const cases: [input: string, reason: RegExp][] = [
    ['10.0.0.300/8', /^is not an IP or CIDR: octet 300 is over 255; write e\.g\. "192\.168\.1\.0\/24" or "2001:db8::\/32"$/],
    ['256.1.1.1', /octet 256 is over 255/],
    ['::ffff:010.0.0.1', /leading zero/],
    ['1.2.3.4.5', /5 parts/],
    ['1.2.3.4/33', /^has prefix \/33, but an IPv4 prefix is \/0 to \/32$/],
    ['::1/129', /^has prefix \/129, but an IPv6 prefix is \/0 to \/128$/],
    ['1.2.3.4/', /^has a bad prefix "\/"; write a number after the slash, e\.g\. "\/24"$/],
    ['1.2.3.4/-1', /bad prefix "\/-1"/],
    ['1.2.3.4/24/8', /bad prefix "\/24\/8"/],
    ['1.2.3.4/ 24', /bad prefix/],
    ['1.2.3.4/1000', /bad prefix/],
    ['', /^is empty; write e\.g\./],
    [' 10.0.0.1', /^contains whitespace/],
    ['localhost', notAnAddress],
    ['4294967295', notAnAddress],
    ['1..2.3', notAnAddress],
    ['1:2:3:4:5:6:7:8:9', notAnAddress],
    ['1:2:3:4:5:6:7::8', notAnAddress],
    ['1::2::3', notAnAddress],
    ['12345::', notAnAddress],
    [':1::', notAnAddress],
    ['1:', notAnAddress],
    ['g::1', notAnAddress],
    [':::', notAnAddress],
    ['1.2.3.4%eth0', notAnAddress],
    ['fe80::1%', notAnAddress],
    ['fe80::1%eth 0', /whitespace/],
    ['1:2:3:4:5:6:7:1.2.3.4', notAnAddress],
  ];
  for (const [input, reason] of cases) {
    const parsed = parseCidr(input);
    assert.ok(!parsed.ok, `${JSON.stringify(input)} must be rejected`);
    assert.match(parsed.error, reason, JSON.stringify(input));
  }
});

test('parseCidr agrees with ipaddr.js on the network of well-formed random CIDRs', () => {
  let seed = 7; // a fixed seed, so a failure can be reproduced
  const random = (): number => (seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0) / 2 ** 32;
  const below = (n: number): number => Math.floor(random() * n);
  for (let i = 0; i < 2000; i++) {
    // Runs of zero groups, so the "::" placement is exercised too.
    const groups = Array.from({ length: 8 }, () => (random() < 0.4 ? 0 : below(0x10000)));
    const ipv4 = i % 2 === 0;
    const address = ipv4 ? Array.from({ length: 4 }, () => below(256)).join('.') : groups.map((g) => g.toString(16)).join(':');
    const input = `${address}/${below(ipv4 ? 33 : 129)}`;
    if (!ipv4 && ipaddr.IPv6.parse(address).isIPv4MappedAddress()) continue;
    const parsed = parseCidr(input);
    assert.ok(parsed.ok, input);
    const network = ipv4 ? ipaddr.IPv4.networkAddressFromCIDR(input).toString() : ipaddr.IPv6.networkAddressFromCIDR(input).toRFC5952String();
    assert.equal(parsed.value.text, `${network}/${input.split('/')[1]}`, input);
  }
});

test('normalizeClientAddress gives the form the gate logs and rate-limits under', () => {
  const cases: [input: string, normalized: string][] = [
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:1.2.3.4', '1.2.3.4'],
    ['::ffff:7f00:1', '127.0.0.1'],
    ['2001:DB8:0::1', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['::1', '::1'],
    ['not an address', 'not an address'],
    ['', ''],
  ];
  for (const [input, normalized] of cases) assert.equal(normalizeClientAddress(input), normalized, input);
});
