import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';
import {
  BINDING,
  decodeStun,
  encodeStun,
  newTransactionId,
  STUN_HEADER_BYTES,
  STUN_MAGIC_COOKIE,
  stunFrameLength,
  type StunAttributes,
  type StunClass,
  type StunDecodeResult,
  type StunErrorKind,
  type StunMessage,
} from '../../src/nat/stun-message.js';
import {
  RFC5769_IPV4_RESPONSE,
  RFC5769_IPV6_RESPONSE,
  RFC5769_PASSWORD,
  RFC5769_REQUEST,
  RFC5769_TRANSACTION_ID,
} from '../helpers/stun-vectors.js';

const VECTORS = { '2.1 request': RFC5769_REQUEST, '2.2 IPv4 response': RFC5769_IPV4_RESPONSE, '2.3 IPv6 response': RFC5769_IPV6_RESPONSE };
const TRANSACTION_ID = Buffer.from('000102030405060708090a0b', 'hex');

function decoded(packet: Uint8Array): StunMessage {
  const result = decodeStun(packet);
  assert.ok(result.ok, result.ok ? '' : `${result.error.kind}: ${result.error.message}`);
  return result.value;
}

function failed(result: StunDecodeResult): Extract<StunDecodeResult, { ok: false }>['error'] {
  assert.ok(!result.ok, 'decode should fail');
  return result.error;
}

/**
 * A message built by hand, so a test can write what encodeStun never would: `type` is the 16-bit message
 * type; attributes are [type, value] padded with zeros; the header length is right unless `length` is given.
 */
function raw(type: number, attributes: [number, number[] | Buffer][] = [], options: { length?: number; cookie?: number } = {}): Buffer {
  const body = Buffer.concat(
    attributes.map(([attributeType, value]) => {
      const bytes = Buffer.alloc(4 + ((value.length + 3) & ~3));
      bytes.writeUInt16BE(attributeType, 0);
      bytes.writeUInt16BE(value.length, 2);
      bytes.set(value, 4);
      return bytes;
    }),
  );
  const header = Buffer.alloc(STUN_HEADER_BYTES);
  header.writeUInt16BE(type, 0);
  header.writeUInt16BE(options.length ?? body.length, 2);
  header.writeUInt32BE(options.cookie ?? STUN_MAGIC_COOKIE, 4);
  header.set(TRANSACTION_ID, 8);
  return Buffer.concat([header, body]);
}

/** Appends a FINGERPRINT over the message as it stands, as a sender would (or a wrong one, by `adjust`). */
function withFingerprint(message: Buffer, adjust = 0): Buffer {
  const packet = Buffer.concat([message, Buffer.from([0x80, 0x28, 0, 4, 0, 0, 0, 0])]);
  packet.writeUInt16BE(packet.length - STUN_HEADER_BYTES, 2);
  packet.writeUInt32BE(((crc32(packet.subarray(0, packet.length - 8)) ^ 0x5354554e) + adjust) >>> 0, packet.length - 4);
  return packet;
}

/** RFC 8489 §14.5: HMAC-SHA1 over the message up to MESSAGE-INTEGRITY, the header length counting it. */
function integrityHolds(vector: Buffer): boolean {
  const start = vector.length - 8 - 24; // in all three vectors MESSAGE-INTEGRITY stands just before FINGERPRINT
  assert.equal(vector.readUInt16BE(start), 0x0008);
  const covered = Buffer.from(vector.subarray(0, start));
  covered.writeUInt16BE(start + 24 - STUN_HEADER_BYTES, 2);
  const mac = createHmac('sha1', RFC5769_PASSWORD).update(covered).digest();
  return mac.equals(vector.subarray(start + 4, start + 24));
}

test('the RFC 5769 vectors are typed in right: their MESSAGE-INTEGRITY holds under the RFC password', () => {
  for (const [name, vector] of Object.entries(VECTORS)) assert.ok(integrityHolds(vector), name);
});

test('RFC 5769 §2.1 sample request decodes: USERNAME, SOFTWARE, a valid FINGERPRINT; PRIORITY and ICE-CONTROLLED are skipped', () => {
  assert.deepEqual(decoded(RFC5769_REQUEST), {
    method: BINDING,
    class: 'request',
    transactionId: RFC5769_TRANSACTION_ID,
    attributes: { username: 'evtj:h6vY', software: 'STUN test client' },
    fingerprint: true,
  });
});

test('RFC 5769 §2.2 and §2.3 sample responses decode to their XOR-MAPPED-ADDRESS', () => {
  const expected = (ip: string): StunMessage => ({
    method: BINDING,
    class: 'success',
    transactionId: RFC5769_TRANSACTION_ID,
    attributes: { software: 'test vector', xorMappedAddress: { ip, port: 32853 } },
    fingerprint: true,
  });
  assert.deepEqual(decoded(RFC5769_IPV4_RESPONSE), expected('192.0.2.1'));
  assert.deepEqual(decoded(RFC5769_IPV6_RESPONSE), expected('2001:db8:1234:5678:11:2233:4455:6677'));
});

test('one flipped byte in each RFC 5769 vector fails its FINGERPRINT', () => {
  for (const [name, vector] of Object.entries(VECTORS)) {
    for (const offset of [1, 9, 25, vector.length - 12, vector.length - 1]) {
      const flipped = Buffer.from(vector);
      flipped[offset] ^= 0x01;
      assert.equal(failed(decodeStun(flipped)).kind, 'bad-fingerprint', `${name}, byte ${offset}`);
    }
  }
});

test('a decoded transaction id is a copy: reusing the packet buffer does not change it', () => {
  const packet = Buffer.from(RFC5769_REQUEST);
  const message = decoded(packet);
  packet.fill(0);
  assert.deepEqual(message.transactionId, RFC5769_TRANSACTION_ID);
});

const BINDING_REQUEST = 0x0001;
const xorMapped5 = [0x0020, [0, 1, 0, 0, 0]] as [number, number[]];

const ERROR_ROWS: { name: string; packet: Buffer; kind: StunErrorKind; message?: RegExp }[] = [
  { name: 'empty packet', packet: Buffer.alloc(0), kind: 'too-short' },
  { name: '19 bytes', packet: raw(BINDING_REQUEST).subarray(0, 19), kind: 'too-short' },
  { name: 'top bits set (DTLS record)', packet: raw(0xc001), kind: 'not-stun', message: /first byte 0xc0/ },
  { name: 'top bit set (RTP)', packet: raw(0x8001), kind: 'not-stun' },
  { name: 'RFC 3489 message without the magic cookie', packet: raw(BINDING_REQUEST, [], { cookie: 0x12345678 }), kind: 'bad-cookie', message: /0x12345678/ },
  { name: 'header length not a multiple of 4', packet: raw(BINDING_REQUEST, [], { length: 3 }), kind: 'bad-length' },
  { name: 'header length past the packet', packet: raw(BINDING_REQUEST, [], { length: 8 }), kind: 'bad-length' },
  { name: 'header length short of the packet', packet: raw(BINDING_REQUEST, [[0x8022, [0x41]]], { length: 4 }), kind: 'bad-length' },
  {
    name: 'XOR-MAPPED-ADDRESS of 5 bytes',
    packet: raw(0x0101, [xorMapped5]),
    kind: 'bad-attribute',
    message: /^attribute 0x0020 XOR-MAPPED-ADDRESS: length 5, expected 8 or 20$/,
  },
  { name: 'attribute length past the end', packet: raw(0x0101, [[0x8022, [1, 2, 3, 4]]], { length: 8 }).fill(0xff, 22, 24), kind: 'bad-attribute', message: /runs past the end/ },
  { name: 'address family 3', packet: raw(0x0101, [[0x0001, [0, 3, 0, 80, 1, 2, 3, 4]]]), kind: 'bad-attribute', message: /family 3/ },
  { name: 'IPv6 family with an IPv4 length', packet: raw(0x0101, [[0x802c, [0, 2, 0, 80, 1, 2, 3, 4]]]), kind: 'bad-attribute', message: /OTHER-ADDRESS: length 8 for address family 2, expected 20/ },
  { name: 'CHANGE-REQUEST of 8 bytes', packet: raw(BINDING_REQUEST, [[0x0003, Buffer.alloc(8)]]), kind: 'bad-attribute', message: /CHANGE-REQUEST: length 8, expected 4/ },
  { name: 'ERROR-CODE class 7', packet: raw(0x0111, [[0x0009, [0, 0, 7, 0]]]), kind: 'bad-attribute', message: /class 7/ },
  { name: 'ERROR-CODE class 2', packet: raw(0x0111, [[0x0009, [0, 0, 2, 0]]]), kind: 'bad-attribute', message: /class 2/ },
  { name: 'ERROR-CODE number 100', packet: raw(0x0111, [[0x0009, [0, 0, 4, 100]]]), kind: 'bad-attribute', message: /number 100/ },
  { name: 'ERROR-CODE of 3 bytes', packet: raw(0x0111, [[0x0009, [0, 0, 4]]]), kind: 'bad-attribute' },
  { name: 'UNKNOWN-ATTRIBUTES of odd length', packet: raw(0x0111, [[0x000a, [0, 1, 0]]]), kind: 'bad-attribute' },
  { name: 'FINGERPRINT of 8 bytes', packet: raw(BINDING_REQUEST, [[0x8028, Buffer.alloc(8)]]), kind: 'bad-attribute', message: /FINGERPRINT: length 8/ },
  { name: 'unknown comprehension-required attribute', packet: raw(BINDING_REQUEST, [[0x0002, [0, 1, 0, 80, 1, 2, 3, 4]]]), kind: 'unknown-required' },
  { name: 'wrong FINGERPRINT', packet: withFingerprint(raw(BINDING_REQUEST), 1), kind: 'bad-fingerprint' },
  {
    name: 'FINGERPRINT not last',
    packet: raw(BINDING_REQUEST, [[0x8028, [0, 0, 0, 0]], [0x8022, [0x41]]]),
    kind: 'bad-fingerprint',
    message: /not the last attribute/,
  },
];

test('each malformed packet fails with its kind and a one-line message', () => {
  for (const row of ERROR_ROWS) {
    const error = failed(decodeStun(row.packet));
    assert.equal(error.kind, row.kind, `${row.name}: ${error.message}`);
    assert.doesNotMatch(error.message, /\n/, row.name);
    if (row.message) assert.match(error.message, row.message, row.name);
  }
});

test('the header comes with every error found after a valid 20-byte header, and only then', () => {
  for (const row of ERROR_ROWS) {
    const error = failed(decodeStun(row.packet));
    const headerValid = row.kind !== 'too-short' && row.kind !== 'not-stun' && row.kind !== 'bad-cookie' && !/multiple of 4/.test(error.message);
    assert.equal(error.header !== undefined, headerValid, row.name);
    if (error.header) assert.deepEqual(error.header.transactionId, TRANSACTION_ID, row.name);
  }
});

test("'unknown-required' lists each unknown type once, with the request's header for a 420", () => {
  const packet = raw(BINDING_REQUEST, [
    [0x0002, [0, 1, 0, 80, 1, 2, 3, 4]], // RFC 3489 RESPONSE-ADDRESS, reserved since RFC 5389
    [0x8029, Buffer.alloc(8)], // ICE-CONTROLLED: optional, ignored
    [0x7777, []],
    [0x0002, [0, 1, 0, 80, 1, 2, 3, 4]],
    [0x0024, [0, 0, 0, 1]], // PRIORITY: known, skipped
  ]);
  const error = failed(decodeStun(packet));
  assert.equal(error.kind, 'unknown-required');
  assert.deepEqual(error.unknown, [0x0002, 0x7777]);
  assert.deepEqual(error.header, { method: BINDING, class: 'request', transactionId: TRANSACTION_ID });
  assert.match(error.message, /0x0002.*0x7777/);
});

test('known but uninterpreted and unknown optional attributes are skipped; so is all after MESSAGE-INTEGRITY', () => {
  const skipped = [0x0008, 0x0014, 0x0015, 0x001c, 0x001d, 0x001e, 0x0024, 0x0025, 0x0026, 0x0027, 0x8029, 0xffff];
  for (const type of skipped) {
    assert.deepEqual(decoded(raw(BINDING_REQUEST, [[type, [1, 2, 3]]])).attributes, {}, `type 0x${type.toString(16)}`);
  }
  const afterIntegrity = raw(0x0101, [[0x0008, Buffer.alloc(20)], [0x7777, []], [0x8022, [0x41]]]);
  assert.deepEqual(decoded(withFingerprint(afterIntegrity)), {
    method: BINDING,
    class: 'success',
    transactionId: TRANSACTION_ID,
    attributes: {},
    fingerprint: true,
  });
});

test('of a repeated attribute the first counts, and padding bytes may hold anything', () => {
  const packet = raw(0x0101, [
    [0x8022, [0x61]],
    [0x8022, [0x62]],
  ]);
  packet.fill(0x20, 25, 28); // the first SOFTWARE's padding, as spaces
  assert.deepEqual(decoded(packet).attributes, { software: 'a' });
});

test('a message without FINGERPRINT decodes with fingerprint false', () => {
  assert.equal(decoded(raw(BINDING_REQUEST)).fingerprint, false);
});

const EVERY_ATTRIBUTE: StunAttributes[] = [
  { mappedAddress: { ip: '198.51.100.2', port: 20001 } },
  { mappedAddress: { ip: '2001:db8::1', port: 65535 } },
  { sourceAddress: { ip: '203.0.113.10', port: 3478 } },
  { sourceAddress: { ip: 'fe80::1:2', port: 0 } },
  { changedAddress: { ip: '203.0.113.11', port: 3479 } },
  { changedAddress: { ip: '2001:db8:0:1::', port: 3479 } },
  { changeRequest: { changeIp: true, changePort: false } },
  { changeRequest: { changeIp: false, changePort: true } },
  { changeRequest: { changeIp: true, changePort: true } },
  { changeRequest: { changeIp: false, changePort: false } },
  { username: 'evtj:h6vY' },
  { errorCode: { code: 420, reason: 'Unknown Attribute' } },
  { errorCode: { code: 300, reason: '' } },
  { errorCode: { code: 699, reason: 'größer' } },
  { unknownAttributes: [0x0002, 0x7777, 0x0003] },
  { unknownAttributes: [] },
  { xorMappedAddress: { ip: '192.0.2.1', port: 32853 } },
  { xorMappedAddress: { ip: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 } },
  { xorMappedAddress: { ip: '10.0.0.255', port: 1 } },
  { software: 'homeport 0.1.0' },
  { software: 'x'.repeat(127) },
  { responseOrigin: { ip: '203.0.113.10', port: 3478 } },
  { responseOrigin: { ip: '::1', port: 3478 } },
  { otherAddress: { ip: '203.0.113.11', port: 3479 } },
  { otherAddress: { ip: '2001:db8::11', port: 3479 } },
];

test('every attribute, IPv4 and IPv6, survives encode then decode, with and without FINGERPRINT', () => {
  const all = Object.assign({}, ...EVERY_ATTRIBUTE.filter((_, index) => index % 2 === 0)) as StunAttributes;
  for (const attributes of [...EVERY_ATTRIBUTE, all]) {
    for (const fingerprint of [false, true]) {
      const message = { method: BINDING, class: 'success' as const, transactionId: newTransactionId(), attributes };
      const packet = encodeStun(message, { fingerprint });
      assert.equal(packet.length % 4, 0);
      assert.deepEqual(decoded(packet), { ...message, fingerprint }, JSON.stringify(attributes));
    }
  }
});

test('encodeStun writes the RFC 5769 IPv6 response byte for byte, but for the MESSAGE-INTEGRITY it leaves out', () => {
  const packet = encodeStun(
    {
      method: BINDING,
      class: 'success',
      transactionId: RFC5769_TRANSACTION_ID,
      attributes: { xorMappedAddress: { ip: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 } },
    },
    { fingerprint: true },
  );
  // the XOR-MAPPED-ADDRESS attribute exactly as in the vector
  assert.deepEqual(packet.subarray(20, 44), RFC5769_IPV6_RESPONSE.subarray(36, 60));
  assert.equal(packet.readUInt16BE(2), 24 + 8);
  assert.equal(decoded(packet).fingerprint, true);
});

test('an IPv4-mapped IPv6 address, as a dual-stack socket reports it, is sent as the IPv4 address', () => {
  const packet = encodeStun({ method: BINDING, class: 'success', transactionId: TRANSACTION_ID, attributes: { mappedAddress: { ip: '::ffff:192.0.2.7', port: 9 } } });
  assert.equal(packet.length, 20 + 4 + 8);
  assert.deepEqual(decoded(packet).attributes, { mappedAddress: { ip: '192.0.2.7', port: 9 } });
});

test('IPv6 addresses decode as Node prints them', () => {
  const v6 = (hex: string): string => {
    const value = Buffer.concat([Buffer.from([0, 2, 0, 1]), Buffer.from(hex, 'hex')]);
    const message = decoded(raw(0x0101, [[0x0001, value]]));
    return message.attributes.mappedAddress!.ip;
  };
  assert.equal(v6('20010db8000000000000000000000001'), '2001:db8::1');
  assert.equal(v6('00000000000000000000000000000000'), '::');
  assert.equal(v6('00000000000000000000ffffc0000201'), '::ffff:192.0.2.1');
  assert.equal(v6('20010000000000010000000000000001'), '2001:0:0:1::1');
});

test('ERROR-CODE and UNKNOWN-ATTRIBUTES are laid out as RFC 8489 §14.8 and §14.9 say', () => {
  const packet = encodeStun({
    method: BINDING,
    class: 'error',
    transactionId: TRANSACTION_ID,
    attributes: { errorCode: { code: 420, reason: 'Unknown' }, unknownAttributes: [0x0002, 0x7777, 0x0003] },
  });
  assert.deepEqual([...packet.subarray(20, 36)], [0, 9, 0, 11, 0, 0, 4, 20, ...Buffer.from('Unknown'), 0]);
  assert.deepEqual([...packet.subarray(36, 48)], [0, 0x0a, 0, 6, 0, 2, 0x77, 0x77, 0, 3, 0, 0]);
});

test('CHANGE-REQUEST sets 0x04 to change the IP and 0x02 to change the port', () => {
  const packet = encodeStun({ method: BINDING, class: 'request', transactionId: TRANSACTION_ID, attributes: { changeRequest: { changeIp: true, changePort: true } } });
  assert.deepEqual([...packet.subarray(20)], [0, 3, 0, 4, 0, 0, 0, 0x06]);
});

test('method and class bits interleave as RFC 8489 §5 lays them out', () => {
  const type = (method: number, messageClass: StunClass): number =>
    encodeStun({ method, class: messageClass, transactionId: TRANSACTION_ID, attributes: {} }).readUInt16BE(0);
  assert.equal(type(BINDING, 'request'), 0x0001);
  assert.equal(type(BINDING, 'indication'), 0x0011);
  assert.equal(type(BINDING, 'success'), 0x0101);
  assert.equal(type(BINDING, 'error'), 0x0111);
  assert.equal(type(0xfff, 'request'), 0x3eef);
  assert.equal(type(0xfff, 'error'), 0x3fff);
  assert.equal(type(0x080, 'request'), 0x0200); // M7 skips C1
  assert.equal(type(0x010, 'request'), 0x0020); // M4 skips C0
  for (const method of [0, 1, 0x003, 0x0a5, 0x5a5, 0xfff]) {
    for (const messageClass of ['request', 'indication', 'success', 'error'] as const) {
      const packet = encodeStun({ method, class: messageClass, transactionId: TRANSACTION_ID, attributes: {} });
      const message = decoded(packet);
      assert.deepEqual([message.method, message.class], [method, messageClass]);
    }
  }
});

test('encodeStun refuses what no valid message holds', () => {
  const message = { method: BINDING, class: 'success' as const, transactionId: TRANSACTION_ID, attributes: {} };
  const refusals: [string, Omit<StunMessage, 'fingerprint'>][] = [
    ['method over 12 bits', { ...message, method: 0x1000 }],
    ['11-byte transaction id', { ...message, transactionId: Buffer.alloc(11) }],
    ['ip that is no address', { ...message, attributes: { xorMappedAddress: { ip: 'example.com', port: 1 } } }],
    ['port over 65535', { ...message, attributes: { mappedAddress: { ip: '192.0.2.1', port: 65536 } } }],
    ['SOFTWARE of 128 characters', { ...message, attributes: { software: 'x'.repeat(128) } }],
    ['ERROR-CODE 700', { ...message, attributes: { errorCode: { code: 700, reason: '' } } }],
    ['ERROR-CODE 299', { ...message, attributes: { errorCode: { code: 299, reason: '' } } }],
  ];
  for (const [name, bad] of refusals) assert.throws(() => encodeStun(bad), RangeError, name);
});

test('stunFrameLength reads 20 + body length from a good header, undefined from anything else', () => {
  const packet = encodeStun({ method: BINDING, class: 'success', transactionId: TRANSACTION_ID, attributes: { software: 'abc' } }, { fingerprint: true });
  assert.equal(stunFrameLength(packet), packet.length);
  assert.equal(stunFrameLength(packet.subarray(0, 20)), packet.length, 'the header alone is enough');
  assert.equal(stunFrameLength(RFC5769_REQUEST), RFC5769_REQUEST.length);
  assert.equal(stunFrameLength(new Uint8Array(packet)), packet.length, 'a plain Uint8Array');
  assert.equal(stunFrameLength(packet.subarray(0, 19)), undefined, 'incomplete header');
  assert.equal(stunFrameLength(raw(0x4001)), undefined, 'top bits');
  assert.equal(stunFrameLength(raw(BINDING_REQUEST, [], { cookie: 0 })), undefined, 'no magic cookie');
  assert.equal(stunFrameLength(raw(BINDING_REQUEST, [], { length: 6 })), undefined, 'length not a multiple of 4');
  assert.equal(stunFrameLength(raw(BINDING_REQUEST, [], { length: 0xfffc })), 20 + 0xfffc, 'a long body still to come');
});

test('newTransactionId gives 12 fresh random bytes', () => {
  const ids = new Set(Array.from({ length: 100 }, () => newTransactionId().toString('hex')));
  assert.equal(ids.size, 100);
  for (const id of ids) assert.equal(id.length, 24);
});
