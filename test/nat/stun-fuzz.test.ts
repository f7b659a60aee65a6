import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { BINDING, decodeStun, encodeStun, STUN_HEADER_BYTES, stunFrameLength, type StunAttributes } from '../../src/nat/stun-message.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { RFC5769_IPV4_RESPONSE, RFC5769_IPV6_RESPONSE, RFC5769_REQUEST } from '../helpers/stun-vectors.js';

/** Seeded, so a failing packet comes back on every run. */
const random = seededRandom(0x5354554e);
const below = (n: number): number => Math.floor(random() * n);
const randomBytes = (length: number): Buffer => Buffer.from(Array.from({ length }, () => below(256)));

const SEED_ATTRIBUTES: StunAttributes[] = [
  {},
  { xorMappedAddress: { ip: '198.51.100.2', port: 20001 }, software: 'homeport' },
  { xorMappedAddress: { ip: '2001:db8::2', port: 20001 }, mappedAddress: { ip: '2001:db8::2', port: 20001 } },
  { changeRequest: { changeIp: true, changePort: true } },
  { errorCode: { code: 420, reason: 'Unknown Attribute' }, unknownAttributes: [0x0002, 0x7777] },
  { sourceAddress: { ip: '203.0.113.10', port: 3478 }, changedAddress: { ip: '203.0.113.11', port: 3479 } },
  { responseOrigin: { ip: '203.0.113.10', port: 3478 }, otherAddress: { ip: '2001:db8::11', port: 3479 }, username: 'a:b' },
];

const SEEDS: Buffer[] = [
  RFC5769_REQUEST,
  RFC5769_IPV4_RESPONSE,
  RFC5769_IPV6_RESPONSE,
  ...SEED_ATTRIBUTES.flatMap((attributes, index) =>
    [false, true].map((fingerprint) =>
      encodeStun({ method: BINDING, class: index === 4 ? 'error' : 'success', transactionId: randomBytes(12), attributes }, { fingerprint }),
    ),
  ),
];

/** Offsets of each attribute's type field in a well-formed message. */
function attributeOffsets(packet: Buffer): number[] {
  const offsets: number[] = [];
  for (let offset = STUN_HEADER_BYTES; offset + 4 <= packet.length; offset += 4 + ((packet.readUInt16BE(offset + 2) + 3) & ~3)) offsets.push(offset);
  return offsets;
}

/** Half the time the header length is made to agree with the packet again, so the damage reaches the attributes. */
function maybeFixLength(packet: Buffer): Buffer {
  if (packet.length >= STUN_HEADER_BYTES && packet.length - STUN_HEADER_BYTES <= 0xffff && random() < 0.5) {
    packet.writeUInt16BE(packet.length - STUN_HEADER_BYTES, 2);
  }
  return packet;
}

const MUTATIONS: ((packet: Buffer) => Buffer)[] = [
  function flipBits(packet) {
    for (let flips = 1 + below(3); flips > 0; flips--) packet[below(packet.length)] ^= 1 << below(8);
    return packet;
  },
  function truncate(packet) {
    return maybeFixLength(packet.subarray(0, below(packet.length)));
  },
  function editHeaderLength(packet) {
    const length = random() < 0.5 ? below(0x10000) : Math.max(0, packet.readUInt16BE(2) + 4 * (below(5) - 2));
    packet.writeUInt16BE(length, 2);
    return packet;
  },
  function editAttributeLength(packet) {
    const offsets = attributeOffsets(packet);
    if (offsets.length === 0) return packet;
    const offset = offsets[below(offsets.length)]!;
    const length = random() < 0.5 ? below(0x10000) : Math.max(0, packet.readUInt16BE(offset + 2) + below(9) - 4);
    packet.writeUInt16BE(length, offset + 2);
    return packet;
  },
  function appendJunk(packet) {
    const junk = random() < 0.5 ? randomBytes(1 + below(40)) : Buffer.from([0, below(0x30), 0, 4, ...randomBytes(4)]);
    return maybeFixLength(Buffer.concat([packet, junk]));
  },
];

test('decodeStun never throws on 100,000 random and mutated packets, and sorts them into plausible kinds', { timeout: 60_000 }, (t) => {
  const counts = { random: new Map<string, number>(), mutated: new Map<string, number>() };
  const count = (map: Map<string, number>, kind: string): void => void map.set(kind, (map.get(kind) ?? 0) + 1);
  const started = performance.now();
  for (let index = 0; index < 100_000; index++) {
    const mutated = index % 4 !== 0;
    const packet = mutated ? MUTATIONS[below(MUTATIONS.length)]!(Buffer.from(SEEDS[below(SEEDS.length)]!)) : randomBytes(below(601));
    let result;
    try {
      result = decodeStun(packet);
    } catch (error) {
      assert.fail(`decodeStun threw ${String(error)} on ${packet.toString('hex')}`);
    }
    const kind = result.ok ? 'ok' : result.error.kind;
    count(mutated ? counts.mutated : counts.random, kind);
    // the TCP framing and the decoder agree on what a valid header is
    const headerValid = result.ok || result.error.header !== undefined;
    if (headerValid) assert.equal(stunFrameLength(packet), STUN_HEADER_BYTES + packet.readUInt16BE(2), packet.toString('hex'));
    if (result.ok) assert.equal(stunFrameLength(packet), packet.length, packet.toString('hex'));
  }
  const elapsed = performance.now() - started;
  t.diagnostic(`100,000 packets in ${elapsed.toFixed(0)} ms; random ${JSON.stringify([...counts.random])}; mutated ${JSON.stringify([...counts.mutated])}`);

  // 25,000 random packets: some shorter than a header; of the rest about 3/4 fail the top bits, the others the cookie
  const ofRandom = (kind: string): number => counts.random.get(kind) ?? 0;
  assert.ok(ofRandom('too-short') > 500 && ofRandom('too-short') < 1500, `too-short ${ofRandom('too-short')}`);
  assert.ok(ofRandom('not-stun') > 0.7 * 25_000 && ofRandom('not-stun') < 0.8 * 25_000, `not-stun ${ofRandom('not-stun')}`);
  assert.equal(ofRandom('not-stun') + ofRandom('bad-cookie') + ofRandom('too-short'), 25_000, 'a random packet never gets past the cookie');

  // 75,000 mutations of valid messages reach every kind, and some still decode (a flipped bit inside a value)
  const ofMutated = (kind: string): number => counts.mutated.get(kind) ?? 0;
  for (const kind of ['ok', 'too-short', 'not-stun', 'bad-length', 'bad-cookie', 'bad-attribute', 'unknown-required', 'bad-fingerprint']) {
    assert.ok(ofMutated(kind) >= 100, `mutations gave ${ofMutated(kind)} × ${kind}`);
  }
  assert.ok(ofMutated('ok') < 0.5 * 75_000, `most mutations fail (${ofMutated('ok')} decoded)`);
});
