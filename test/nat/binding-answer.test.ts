import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answerBinding, roleName, type BindingContext } from '../../src/nat/binding-answer.js';
import { decodeStun, encodeStun, newTransactionId, type StunAddress, type StunAttributes } from '../../src/nat/stun-message.js';
import { bindingBytes, withRawAttribute } from '../helpers/stun-bytes.js';

const SOFTWARE = 'homeport 0.1.0';
const CLIENT = { ip: '198.51.100.2', port: 40000 };
const A1P1 = { ip: '203.0.113.10', port: 3478 };
const A1P2 = { ip: '203.0.113.10', port: 3479 };
const A2P1 = { ip: '203.0.113.11', port: 3478 };
const A2P2 = { ip: '203.0.113.11', port: 3479 };
const ROLE = {
  'A1:P1': { alternateIp: false, alternatePort: false },
  'A1:P2': { alternateIp: false, alternatePort: true },
  'A2:P1': { alternateIp: true, alternatePort: false },
  'A2:P2': { alternateIp: true, alternatePort: true },
} as const;

const PLAIN: BindingContext = { transport: 'udp', source: CLIENT, primary: A1P1, received: ROLE['A1:P1'], software: SOFTWARE };
const RFC5780: BindingContext = { ...PLAIN, alternate: A2P2 };

const CHANGE_IP = { changeRequest: { changeIp: true, changePort: false } };
const CHANGE_PORT = { changeRequest: { changeIp: false, changePort: true } };
const CHANGE_BOTH = { changeRequest: { changeIp: true, changePort: true } };
const CHANGE_NONE = { changeRequest: { changeIp: false, changePort: false } };

/** A success response's attributes: the client's address twice, where it was sent from, and OTHER-ADDRESS when there is one. */
function success(origin: StunAddress | undefined, other?: StunAddress, source = CLIENT): StunAttributes {
  return {
    xorMappedAddress: source,
    mappedAddress: source,
    ...(origin ? { responseOrigin: origin } : {}),
    ...(other ? { otherAddress: other, changedAddress: other } : {}),
    software: SOFTWARE,
  };
}

function failure(code: number, reason: string, unknownAttributes?: number[]): StunAttributes {
  return { errorCode: { code, reason }, ...(unknownAttributes ? { unknownAttributes } : {}), software: SOFTWARE };
}

interface Case {
  name: string;
  packet: Buffer;
  context: BindingContext;
  /** undefined: no answer at all. */
  expected?: { from: keyof typeof ROLE; class: 'success' | 'error'; attributes: StunAttributes };
}

const cases: Case[] = [
  { name: 'plain server: a Binding request', packet: bindingBytes(), context: PLAIN, expected: { from: 'A1:P1', class: 'success', attributes: success(A1P1) } },
  { name: 'plain server: CHANGE-REQUEST is ignored, no OTHER-ADDRESS', packet: bindingBytes(CHANGE_BOTH), context: PLAIN, expected: { from: 'A1:P1', class: 'success', attributes: success(A1P1) } },
  { name: 'plain server over TCP: CHANGE-REQUEST is ignored too', packet: bindingBytes(CHANGE_PORT), context: { ...PLAIN, transport: 'tcp' }, expected: { from: 'A1:P1', class: 'success', attributes: success(A1P1) } },
  { name: 'plain server on a wildcard address: no RESPONSE-ORIGIN', packet: bindingBytes(), context: { ...PLAIN, primary: { ip: '0.0.0.0', port: 3478 } }, expected: { from: 'A1:P1', class: 'success', attributes: success(undefined) } },
  { name: 'plain server on [::]: no RESPONSE-ORIGIN', packet: bindingBytes(), context: { ...PLAIN, primary: { ip: '::', port: 3478 } }, expected: { from: 'A1:P1', class: 'success', attributes: success(undefined) } },
  {
    name: 'an IPv6 client is told its IPv6 address',
    packet: bindingBytes(),
    context: { ...PLAIN, source: { ip: '2001:db8::7', port: 50000 }, primary: { ip: '2001:db8::1', port: 3478 } },
    expected: { from: 'A1:P1', class: 'success', attributes: success({ ip: '2001:db8::1', port: 3478 }, undefined, { ip: '2001:db8::7', port: 50000 }) },
  },
  // RFC 5780 Table 1, from A1:P1: OTHER-ADDRESS is always A2:P2
  { name: 'RFC 5780: no CHANGE-REQUEST', packet: bindingBytes(), context: RFC5780, expected: { from: 'A1:P1', class: 'success', attributes: success(A1P1, A2P2) } },
  { name: 'RFC 5780: CHANGE-REQUEST without flags', packet: bindingBytes(CHANGE_NONE), context: RFC5780, expected: { from: 'A1:P1', class: 'success', attributes: success(A1P1, A2P2) } },
  { name: 'RFC 5780: change IP', packet: bindingBytes(CHANGE_IP), context: RFC5780, expected: { from: 'A2:P1', class: 'success', attributes: success(A2P1, A2P2) } },
  { name: 'RFC 5780: change port', packet: bindingBytes(CHANGE_PORT), context: RFC5780, expected: { from: 'A1:P2', class: 'success', attributes: success(A1P2, A2P2) } },
  { name: 'RFC 5780: change IP and port', packet: bindingBytes(CHANGE_BOTH), context: RFC5780, expected: { from: 'A2:P2', class: 'success', attributes: success(A2P2, A2P2) } },
  // ...and relative to the socket that received the request
  { name: 'RFC 5780: received on A2:P2, no change', packet: bindingBytes(), context: { ...RFC5780, received: ROLE['A2:P2'] }, expected: { from: 'A2:P2', class: 'success', attributes: success(A2P2, A1P1) } },
  { name: 'RFC 5780: received on A2:P2, change IP', packet: bindingBytes(CHANGE_IP), context: { ...RFC5780, received: ROLE['A2:P2'] }, expected: { from: 'A1:P2', class: 'success', attributes: success(A1P2, A1P1) } },
  { name: 'RFC 5780: received on A1:P2, change port', packet: bindingBytes(CHANGE_PORT), context: { ...RFC5780, received: ROLE['A1:P2'] }, expected: { from: 'A1:P1', class: 'success', attributes: success(A1P1, A2P1) } },
  { name: 'RFC 5780: received on A2:P1, change both', packet: bindingBytes(CHANGE_BOTH), context: { ...RFC5780, received: ROLE['A2:P1'] }, expected: { from: 'A1:P2', class: 'success', attributes: success(A1P2, A1P2) } },
  // TCP: the answer can only go back on the request's own connection
  { name: 'RFC 5780 over TCP: a plain request', packet: bindingBytes(), context: { ...RFC5780, transport: 'tcp' }, expected: { from: 'A1:P1', class: 'success', attributes: success(A1P1, A2P2) } },
  { name: 'RFC 5780 over TCP: CHANGE-REQUEST without flags', packet: bindingBytes(CHANGE_NONE), context: { ...RFC5780, transport: 'tcp' }, expected: { from: 'A1:P1', class: 'success', attributes: success(A1P1, A2P2) } },
  { name: 'RFC 5780 over TCP: change port is 400', packet: bindingBytes(CHANGE_PORT), context: { ...RFC5780, transport: 'tcp' }, expected: { from: 'A1:P1', class: 'error', attributes: failure(400, 'CHANGE-REQUEST works over UDP only') } },
  { name: 'RFC 5780 over TCP: change IP on A2:P2 is 400 from A2:P2', packet: bindingBytes(CHANGE_IP), context: { ...RFC5780, transport: 'tcp', received: ROLE['A2:P2'] }, expected: { from: 'A2:P2', class: 'error', attributes: failure(400, 'CHANGE-REQUEST works over UDP only') } },
  // attributes
  { name: 'an unknown comprehension-required attribute is 420', packet: withRawAttribute(bindingBytes(), 0x0031, Buffer.alloc(4)), context: PLAIN, expected: { from: 'A1:P1', class: 'error', attributes: failure(420, 'Unknown Attribute', [0x0031]) } },
  {
    name: 'every unknown comprehension-required attribute is listed',
    packet: withRawAttribute(withRawAttribute(bindingBytes(CHANGE_IP), 0x7fff, Buffer.from('x')), 0x0031, Buffer.alloc(0)),
    context: RFC5780,
    expected: { from: 'A1:P1', class: 'error', attributes: failure(420, 'Unknown Attribute', [0x7fff, 0x0031]) },
  },
  { name: 'an unknown comprehension-optional attribute is ignored', packet: withRawAttribute(bindingBytes(), 0x8fff, Buffer.alloc(3)), context: PLAIN, expected: { from: 'A1:P1', class: 'success', attributes: success(A1P1) } },
  { name: 'a malformed CHANGE-REQUEST is 400', packet: withRawAttribute(bindingBytes(), 0x0003, Buffer.alloc(2)), context: RFC5780, expected: { from: 'A1:P1', class: 'error', attributes: failure(400, 'Bad Request') } },
  { name: 'an address attribute of family 3 is 400', packet: withRawAttribute(bindingBytes(), 0x0001, Buffer.from([0, 3, 0, 80, 1, 2, 3, 4])), context: PLAIN, expected: { from: 'A1:P1', class: 'error', attributes: failure(400, 'Bad Request') } },
  // silence
  { name: 'an indication gets no answer', packet: bindingBytes({}, 'indication'), context: PLAIN },
  { name: 'a success response gets no answer', packet: bindingBytes({ xorMappedAddress: CLIENT }, 'success'), context: PLAIN },
  { name: 'an error response gets no answer', packet: bindingBytes({ errorCode: { code: 400, reason: 'Bad Request' } }, 'error'), context: PLAIN },
  { name: 'an indication with an unknown required attribute gets no answer', packet: withRawAttribute(bindingBytes({}, 'indication'), 0x0031, Buffer.alloc(4)), context: PLAIN },
  { name: 'a request of another method (Allocate) gets no answer', packet: encodeStun({ method: 0x003, class: 'request', transactionId: newTransactionId(), attributes: {} }), context: PLAIN },
  { name: 'a truncated request gets no answer', packet: withRawAttribute(bindingBytes(), 0x8022, Buffer.from('abcd')).subarray(0, 24), context: PLAIN },
  { name: 'a request with a wrong FINGERPRINT gets no answer', packet: wrongFingerprint(), context: PLAIN },
  { name: 'bytes that are no STUN get no answer', packet: Buffer.from('GET / HTTP/1.1\r\nHost: example.com\r\n\r\n'), context: PLAIN },
  { name: 'an empty datagram gets no answer', packet: Buffer.alloc(0), context: PLAIN },
  { name: 'a header without the magic cookie gets no answer', packet: Buffer.alloc(20, 0), context: PLAIN },
];

function wrongFingerprint(): Buffer {
  const packet = encodeStun({ method: 0x001, class: 'request', transactionId: newTransactionId(), attributes: {} }, { fingerprint: true });
  packet[packet.length - 1]! ^= 0xff;
  return packet;
}

for (const { name, packet, context, expected } of cases) {
  test(name, () => {
    const answer = answerBinding(decodeStun(packet), context);
    if (!expected) return assert.equal(answer, undefined);
    assert.ok(answer, 'an answer');
    assert.equal(roleName(answer.from), expected.from, 'sent from');
    const decoded = decodeStun(answer.packet);
    assert.ok(decoded.ok, JSON.stringify(decoded));
    const request = decodeStun(packet);
    const transactionId = request.ok ? request.value.transactionId : request.error.header!.transactionId;
    assert.deepEqual(decoded.value, { method: 0x001, class: expected.class, transactionId, attributes: expected.attributes, fingerprint: true });
  });
}
