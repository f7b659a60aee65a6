import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { test } from 'node:test';
import { decodeProxyHeader, encodeProxyHeader, MAX_PROXY_HEADER_BYTES, type ProxyHeader } from '../../src/protocol/proxy-v2.js';

const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 8);
/** haproxy proxy-protocol.txt 2.2: the 12-byte v2 signature, written out here rather than imported. */
const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** The homeport MAC as the agent must check it: HMAC-SHA256 over a label and every byte before the MAC TLV. */
function macOf(covered: Buffer, key = KEY): Buffer {
  return createHmac('sha256', key).update('homeport/1 proxy\n').update(covered).digest();
}

/** A header built by hand: fixed part with `length` = everything after byte 16, then address block and TLVs. */
function handBuilt(familyByte: number, addressBlock: number[], tlvs: Buffer, lengthOverride?: number): Buffer {
  const body = Buffer.concat([Buffer.from(addressBlock), tlvs]);
  const length = lengthOverride ?? body.length;
  return Buffer.concat([Buffer.from([...SIGNATURE, 0x21, familyByte, length >> 8, length & 0xff]), body]);
}

function tlv(type: number, value: Buffer, declaredLength = value.length): Buffer {
  return Buffer.concat([Buffer.from([type, declaredLength >> 8, declaredLength & 0xff]), value]);
}

/** A hand-built header sealed with a MAC TLV as the last TLV, after `before`. */
function sealedByHand(familyByte: number, addressBlock: number[], before: Buffer = Buffer.alloc(0), key = KEY): Buffer {
  const totalAfterFixed = addressBlock.length + before.length + 35;
  const covered = handBuilt(familyByte, addressBlock, before, totalAfterFixed);
  return Buffer.concat([covered, tlv(0xe0, macOf(covered, key))]);
}

const V4_BLOCK = [192, 0, 2, 1, 198, 51, 100, 7, 0xc8, 0x22, 0x24, 0xe3]; // 192.0.2.1:51234 → 198.51.100.7:9443
const V4_HEADER: ProxyHeader = { source: { ip: '192.0.2.1', port: 51234 }, destination: { ip: '198.51.100.7', port: 9443 } };

test('round trip: IPv4 and IPv6 in every written form decode to the canonical address and the same ports', () => {
  const cases: [source: string, destination: string, sourceOut: string, destinationOut: string][] = [
    ['192.0.2.1', '198.51.100.7', '192.0.2.1', '198.51.100.7'],
    ['0.0.0.0', '255.255.255.255', '0.0.0.0', '255.255.255.255'],
    ['2001:db8::1', '2001:db8::2', '2001:db8::1', '2001:db8::2'],
    ['::1', '::', '::1', '::'],
    ['1::', '::1:0:0:0', '1::', '::1:0:0:0'],
    ['2001:db8:1:2:3:4:5:6', 'fe80:1:2:3:4:5:6:7', '2001:db8:1:2:3:4:5:6', 'fe80:1:2:3:4:5:6:7'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:DB8::ABCD', '2001:db8::1', '2001:db8::abcd'],
    ['64:ff9b::192.0.2.1', '2001:db8::198.51.100.7', '64:ff9b::c000:201', '2001:db8::c633:6407'],
    // RFC 5952: one zero word is not shortened; of two equal runs the first is
    ['2001:db8:0:1:1:1:1:1', '2001:0:0:1:0:0:1:1', '2001:db8:0:1:1:1:1:1', '2001::1:0:0:1:1'],
    ['2001:db8:0:0:1:0:0:0', '::', '2001:db8:0:0:1::', '::'],
  ];
  for (const [source, destination, sourceOut, destinationOut] of cases) {
    const header: ProxyHeader = { source: { ip: source, port: 1 }, destination: { ip: destination, port: 65535 } };
    const decoded = decodeProxyHeader(encodeProxyHeader(header, KEY), KEY);
    assert.equal(decoded.state, 'done', `${source} → ${destination}`);
    if (decoded.state !== 'done') continue;
    assert.deepEqual(decoded.header, { source: { ip: sourceOut, port: 1 }, destination: { ip: destinationOut, port: 65535 } }, `${source} → ${destination}`);
  }
});

test('IPv6 addresses land in the address block as their 16 bytes, whatever the written form', () => {
  const cases: [ip: string, bytes: number[]][] = [
    ['2001:db8::1', [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
    ['::1', [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]],
    ['1:2:3:4:5:6:7:8', [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]],
    ['64:ff9b::192.0.2.1', [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]],
    ['::192.0.2.1', [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1]],
    ['fe80::', [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]],
  ];
  for (const [ip, bytes] of cases) {
    const frame = encodeProxyHeader({ source: { ip, port: 443 }, destination: { ip: '::', port: 443 } }, KEY);
    assert.equal(frame[13], 0x21, ip);
    assert.deepEqual([...frame.subarray(16, 32)], bytes, ip);
  }
});

test('byte layout follows the haproxy spec: signature, 0x21, family, big-endian length, addresses, ports, then the MAC TLV', () => {
  const v4 = encodeProxyHeader(V4_HEADER, KEY);
  const v4Prefix = handBuilt(0x11, V4_BLOCK, Buffer.alloc(0), 12 + 35);
  assert.equal(v4.length, 16 + 12 + 35);
  assert.deepEqual([...v4.subarray(0, 28)], [...v4Prefix]);
  assert.deepEqual([...v4.subarray(28, 31)], [0xe0, 0x00, 0x20], 'TLV type 0xE0, length 32');
  assert.deepEqual(v4.subarray(31), macOf(v4.subarray(0, 28)), 'the MAC covers every byte before its TLV, the length field included');

  const v6 = encodeProxyHeader({ source: { ip: '2001:db8::1', port: 0x1234 }, destination: { ip: '2001:db8::2', port: 0xabcd } }, KEY);
  const v6Block = [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 1, 0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 2, 0x12, 0x34, 0xab, 0xcd];
  const v6Prefix = handBuilt(0x21, v6Block, Buffer.alloc(0), 36 + 35);
  assert.equal(v6.length, 16 + 36 + 35);
  assert.deepEqual([...v6.subarray(0, 52)], [...v6Prefix]);
  assert.equal(v6.readUInt16BE(14), 71);
  assert.deepEqual([...v6.subarray(52, 55)], [0xe0, 0x00, 0x20]);
  assert.deepEqual(v6.subarray(55), macOf(v6.subarray(0, 52)));
});

test('a hand-built header with the spec\'s layout and the homeport MAC decodes, also after other TLVs', () => {
  const plain = sealedByHand(0x11, V4_BLOCK);
  assert.deepEqual(decodeProxyHeader(plain, KEY), { state: 'done', length: plain.length, header: V4_HEADER });
  const withNoop = sealedByHand(0x11, V4_BLOCK, tlv(0x04, Buffer.alloc(5))); // PP2_TYPE_NOOP first
  assert.deepEqual(decodeProxyHeader(withNoop, KEY), { state: 'done', length: withNoop.length, header: V4_HEADER });
  // exactly MAX_PROXY_HEADER_BYTES long is still accepted
  const padding = MAX_PROXY_HEADER_BYTES - 16 - 12 - 35 - 3;
  const longest = sealedByHand(0x11, V4_BLOCK, tlv(0x04, Buffer.alloc(padding)));
  assert.equal(longest.length, MAX_PROXY_HEADER_BYTES);
  assert.equal(decodeProxyHeader(longest, KEY).state, 'done');
});

test('IPv4-mapped IPv6 addresses are sent as IPv4', () => {
  const cases: [source: string, destination: string][] = [
    ['::ffff:192.0.2.1', '198.51.100.7'],
    ['::FFFF:192.0.2.1', '::ffff:198.51.100.7'],
    ['192.0.2.1', '::ffff:198.51.100.7'],
  ];
  for (const [source, destination] of cases) {
    const frame = encodeProxyHeader({ source: { ip: source, port: 51234 }, destination: { ip: destination, port: 9443 } }, KEY);
    assert.equal(frame[13], 0x11, `${source}: TCP over IPv4`);
    assert.equal(frame.length, 16 + 12 + 35, source);
    assert.deepEqual([...frame.subarray(16, 28)], V4_BLOCK, source);
    assert.deepEqual(decodeProxyHeader(frame, KEY), { state: 'done', length: frame.length, header: V4_HEADER }, source);
  }
});

test('a destination of the other family than the source becomes the unspecified address of the source\'s family', () => {
  const cases: [source: string, destination: string, familyByte: number, destinationOut: string][] = [
    ['192.0.2.1', '2001:db8::7', 0x11, '0.0.0.0'],
    ['2001:db8::1', '198.51.100.7', 0x21, '::'],
    ['2001:db8::1', '::ffff:198.51.100.7', 0x21, '::'],
  ];
  for (const [source, destination, familyByte, destinationOut] of cases) {
    const frame = encodeProxyHeader({ source: { ip: source, port: 5 }, destination: { ip: destination, port: 6 } }, KEY);
    assert.equal(frame[13], familyByte, source);
    const decoded = decodeProxyHeader(frame, KEY);
    assert.equal(decoded.state, 'done');
    if (decoded.state === 'done') assert.deepEqual(decoded.header.destination, { ip: destinationOut, port: 6 }, `${source} → ${destination}`);
  }
});

test('every prefix of a valid header is incomplete', () => {
  for (const frame of [encodeProxyHeader(V4_HEADER, KEY), encodeProxyHeader({ source: { ip: '2001:db8::1', port: 2 }, destination: { ip: '2001:db8::2', port: 3 } }, KEY)]) {
    for (let length = 0; length < frame.length; length++) {
      assert.deepEqual(decodeProxyHeader(frame.subarray(0, length), KEY), { state: 'incomplete' }, `${length} of ${frame.length} bytes`);
    }
  }
});

test('length is the header size: trailing TLS bytes are left for the user stream', () => {
  const clientHello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]);
  for (const header of [V4_HEADER, { source: { ip: '2001:db8::1', port: 2 }, destination: { ip: '2001:db8::2', port: 3 } }]) {
    const frame = encodeProxyHeader(header, KEY);
    const stream = Buffer.concat([frame, clientHello]);
    const copy = Buffer.from(stream);
    const decoded = decodeProxyHeader(stream, KEY);
    assert.equal(decoded.state, 'done');
    if (decoded.state !== 'done') continue;
    assert.equal(decoded.length, frame.length);
    assert.deepEqual(stream.subarray(decoded.length), clientHello);
    assert.deepEqual(stream, copy, 'decoding does not change the bytes');
  }
});

test('invalid: wrong signature, version/command, family, or a length out of range', () => {
  const good = encodeProxyHeader(V4_HEADER, KEY);
  const changed = (at: number, value: number, bytes = good): Buffer => {
    const copy = Buffer.from(bytes);
    copy[at] = value;
    return copy;
  };
  const withLength = (length: number): Buffer => {
    const copy = Buffer.from(good);
    copy.writeUInt16BE(length, 14);
    return copy;
  };
  const cases: [name: string, bytes: Buffer, error: RegExp][] = [
    ['first byte wrong, alone', Buffer.from([0x0e]), /signature/],
    ['first byte wrong, whole header', changed(0, 0x0e), /signature/],
    ['last signature byte wrong', changed(11, 0x0b), /signature/],
    ['signature wrong in a prefix', Buffer.from([0x0d, 0x0a, 0x0d, 0x0b]), /signature/],
    ['a v1 text header', Buffer.from('PROXY TCP4 192.0.2.1 198.51.100.7 51234 9443\r\n'), /signature/],
    ['a TLS ClientHello', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]), /signature/],
    ['version 2 LOCAL (0x20)', changed(12, 0x20), /0x20/],
    ['version 1 (0x11)', changed(12, 0x11), /0x11/],
    ['UDP over IPv4 (0x12)', changed(13, 0x12), /0x12/],
    ['UDP over IPv6 (0x22)', changed(13, 0x22), /0x22/],
    ['UNIX stream (0x31)', changed(13, 0x31), /0x31/],
    ['unspecified (0x00)', changed(13, 0x00), /family/],
    ['length 241 (257 bytes)', withLength(MAX_PROXY_HEADER_BYTES - 16 + 1), /longer than 256/],
    ['length 0xffff', withLength(0xffff), /longer/],
    ['length just too short for IPv4 + MAC', withLength(12 + 35 - 1), /too short/],
    ['length 0', withLength(0), /too short/],
    ['IPv6 family with an IPv4-sized length', changed(13, 0x21), /too short/],
  ];
  for (const [name, bytes, error] of cases) {
    const decoded = decodeProxyHeader(bytes, KEY);
    assert.equal(decoded.state, 'invalid', name);
    if (decoded.state === 'invalid') assert.match(decoded.error, error, name);
  }
  // a bad length is refused from the fixed part alone: no need to wait for the rest
  assert.equal(decodeProxyHeader(withLength(0xffff).subarray(0, 16), KEY).state, 'invalid');
  assert.equal(decodeProxyHeader(withLength(0).subarray(0, 16), KEY).state, 'invalid');
});

test('invalid: any flipped bit in an address, a port or the MAC; a MAC made with another key', () => {
  for (const frame of [encodeProxyHeader(V4_HEADER, KEY), encodeProxyHeader({ source: { ip: '2001:db8::1', port: 2 }, destination: { ip: '2001:db8::2', port: 3 } }, KEY)]) {
    for (let at = 16; at < frame.length; at++) {
      if (at >= frame.length - 35 && at < frame.length - 32) continue; // the TLV's type and length: see the TLV tests
      for (const bit of [0x01, 0x80]) {
        const copy = Buffer.from(frame);
        copy[at]! ^= bit;
        const decoded = decodeProxyHeader(copy, KEY);
        assert.equal(decoded.state, 'invalid', `byte ${at} bit ${bit}`);
        if (decoded.state === 'invalid') assert.match(decoded.error, /MAC is wrong/, `byte ${at}`);
      }
    }
  }
  const decoded = decodeProxyHeader(encodeProxyHeader(V4_HEADER, OTHER_KEY), KEY);
  assert.deepEqual(decoded, { state: 'invalid', error: 'the header MAC is wrong' });
  const byHand = decodeProxyHeader(sealedByHand(0x11, V4_BLOCK, Buffer.alloc(0), OTHER_KEY), KEY);
  assert.equal(byHand.state, 'invalid');
});

test('invalid: the MAC TLV missing, not last, truncated, or of another size', () => {
  const covered = (afterAddresses: number): Buffer => handBuilt(0x11, V4_BLOCK, Buffer.alloc(0), 12 + afterAddresses);
  const cases: [name: string, bytes: Buffer, error: RegExp][] = [];
  {
    // the MAC's 35 bytes in a NOOP TLV: the right size, but no 0xE0
    const head = covered(35);
    cases.push(['no MAC TLV (a NOOP in its place)', Buffer.concat([head, tlv(0x04, macOf(head))]), /no homeport MAC/]);
  }
  {
    // a valid MAC TLV followed by a NOOP TLV: bytes after the MAC are not covered by it
    const head = covered(35 + 3);
    cases.push(['MAC TLV not last', Buffer.concat([head, tlv(0xe0, macOf(head)), tlv(0x04, Buffer.alloc(0))]), /no homeport MAC/]);
  }
  {
    // the header length ends inside the MAC value (after a 4-byte NOOP, so the length itself is long enough)
    const noop = tlv(0x04, Buffer.alloc(1));
    const head = Buffer.concat([covered(noop.length + 35 - 1), noop]);
    cases.push(['MAC TLV cut short by the header length', Buffer.concat([head, tlv(0xe0, macOf(head))]), /no homeport MAC/]);
    cases.push(['the same cut header, too short for the MAC without the NOOP', Buffer.concat([covered(35 - 1), tlv(0xe0, macOf(covered(34)))]), /too short/]);
  }
  {
    // a MAC TLV declaring 31 bytes, after a NOOP so the header is long enough
    const noop = tlv(0x04, Buffer.alloc(1));
    const head = Buffer.concat([covered(noop.length + 3 + 31), noop]);
    cases.push(['MAC TLV of 31 bytes', Buffer.concat([head, tlv(0xe0, macOf(head).subarray(0, 31))]), /no homeport MAC/]);
  }
  {
    // a MAC TLV declaring 33 bytes, holding the right MAC and one more
    const head = covered(3 + 33);
    cases.push(['MAC TLV of 33 bytes', Buffer.concat([head, tlv(0xe0, Buffer.concat([macOf(head), Buffer.from([0])]))]), /no homeport MAC/]);
  }
  {
    // only 2 bytes of TLV space: not even a TLV header
    const head = covered(2 + 35);
    cases.push(['2 stray bytes before the MAC TLV', Buffer.concat([head.subarray(0, 28), Buffer.from([0, 0]), tlv(0xe0, macOf(Buffer.concat([head.subarray(0, 28), Buffer.from([0, 0])])))]), /no homeport MAC/]);
  }
  for (const [name, bytes, error] of cases) {
    const decoded = decodeProxyHeader(bytes, KEY);
    assert.equal(decoded.state, 'invalid', name);
    if (decoded.state === 'invalid') assert.match(decoded.error, error, name);
  }
});
