import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { encodeFrame, FrameDecoder } from '../../src/protocol/framing.js';
import { randomNonce } from '../../src/common/nonce.js';
import { parseMessage, type Message, type ObservedAddress } from '../../src/protocol/messages.js';
import {
  authMac,
  canonicalJson,
  macEquals,
  SealedChannelState,
  sessionKey,
  welcomeMac,
  type SealedMessage,
} from '../../src/protocol/session.js';

const SECRET = 'correct horse battery staple';
const FINGERPRINT = Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0').toUpperCase()).join(':');
const OBSERVED: ObservedAddress = { ip: '203.0.113.7', port: 40123 };
const clientNonce = randomNonce();
const serverNonce = randomNonce();
const key = sessionKey(SECRET, clientNonce, serverNonce);

/** Sends a message the way the wire does: frame, decode, validate. */
function overTheWire(message: object): Message {
  const frames = new FrameDecoder().push(encodeFrame(message));
  assert.ok(frames.ok && frames.value.length === 1);
  const parsed = parseMessage(frames.value[0]);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
  return parsed.value;
}

function pair(): { agent: SealedChannelState; server: SealedChannelState } {
  return { agent: new SealedChannelState(key, 'agent'), server: new SealedChannelState(key, 'server') };
}

function refused(result: ReturnType<SealedChannelState['open']>, reason: RegExp): void {
  assert.ok(!result.ok, 'must be refused');
  assert.match(result.error, reason);
}

const hmacHex = (secret: string | Buffer, text: string) => createHmac('sha256', secret).update(text).digest('hex');

test('handshake MACs are HMAC-SHA256 over the documented texts', () => {
  const claims = { fingerprint: FINGERPRINT, listenPort: 8443, publicHost: 'home.example.com' };
  assert.equal(
    authMac(SECRET, 'home', clientNonce, serverNonce, claims),
    hmacHex(SECRET, `homeport/1 auth\nhome\n${clientNonce}\n${serverNonce}\n${FINGERPRINT}\n8443\nhome.example.com`),
  );
  assert.equal(
    authMac(SECRET, 'home', clientNonce, serverNonce, { fingerprint: FINGERPRINT, listenPort: 8443 }),
    hmacHex(SECRET, `homeport/1 auth\nhome\n${clientNonce}\n${serverNonce}\n${FINGERPRINT}\n8443\n`),
  );
  assert.equal(
    welcomeMac(SECRET, 'home', serverNonce, clientNonce, { observed: OBSERVED, heartbeatMs: 5000, stunPort: 3478 }),
    hmacHex(SECRET, `homeport/1 welcome\nhome\n${serverNonce}\n${clientNonce}\n203.0.113.7\n40123\n5000\n3478`),
  );
  assert.equal(
    welcomeMac(SECRET, 'home', serverNonce, clientNonce, { observed: OBSERVED, heartbeatMs: 5000 }),
    hmacHex(SECRET, `homeport/1 welcome\nhome\n${serverNonce}\n${clientNonce}\n203.0.113.7\n40123\n5000\n`),
  );
  assert.deepEqual(key, createHmac('sha256', SECRET).update(`homeport/1 session\n${clientNonce}\n${serverNonce}`).digest());
  assert.equal(key.length, 32);
});

test('a string secret and its UTF-8 bytes give the same MACs', () => {
  const secret = 'geheimnis-größer-als-16';
  const claims = { fingerprint: FINGERPRINT, listenPort: 1 };
  assert.equal(authMac(secret, 'a', clientNonce, serverNonce, claims), authMac(Buffer.from(secret), 'a', clientNonce, serverNonce, claims));
  assert.deepEqual(sessionKey(secret, clientNonce, serverNonce), sessionKey(Buffer.from(secret), clientNonce, serverNonce));
});

test('the auth MAC changes with every input, so no field can be swapped on the path', () => {
  const claims = { fingerprint: FINGERPRINT, listenPort: 8443, publicHost: 'home.example.com' };
  const reference = authMac(SECRET, 'home', clientNonce, serverNonce, claims);
  const variants = [
    authMac(`${SECRET}!`, 'home', clientNonce, serverNonce, claims),
    authMac(SECRET, 'home2', clientNonce, serverNonce, claims),
    authMac(SECRET, 'home', serverNonce, clientNonce, claims),
    authMac(SECRET, 'home', randomNonce(), serverNonce, claims),
    authMac(SECRET, 'home', clientNonce, randomNonce(), claims),
    authMac(SECRET, 'home', clientNonce, serverNonce, { ...claims, fingerprint: FINGERPRINT.replace(/^../, 'FF') }),
    authMac(SECRET, 'home', clientNonce, serverNonce, { ...claims, listenPort: 8444 }),
    authMac(SECRET, 'home', clientNonce, serverNonce, { ...claims, publicHost: 'evil.example.com' }),
    authMac(SECRET, 'home', clientNonce, serverNonce, { fingerprint: FINGERPRINT, listenPort: 8443 }),
  ];
  assert.equal(new Set([reference, ...variants]).size, variants.length + 1);
});

test('the welcome MAC changes with the observed address, the heartbeat, the STUN port and the nonce order', () => {
  const claims = { observed: OBSERVED, heartbeatMs: 5000, stunPort: 3478 };
  const reference = welcomeMac(SECRET, 'home', serverNonce, clientNonce, claims);
  const variants = [
    welcomeMac(SECRET, 'home', serverNonce, clientNonce, { ...claims, observed: { ...OBSERVED, ip: '203.0.113.8' } }),
    welcomeMac(SECRET, 'home', serverNonce, clientNonce, { ...claims, observed: { ...OBSERVED, port: 40124 } }),
    welcomeMac(SECRET, 'home', serverNonce, clientNonce, { ...claims, heartbeatMs: 60000 }),
    welcomeMac(SECRET, 'home', serverNonce, clientNonce, { ...claims, stunPort: 3479 }),
    welcomeMac(SECRET, 'home', serverNonce, clientNonce, { observed: OBSERVED, heartbeatMs: 5000 }),
    welcomeMac(SECRET, 'home', clientNonce, serverNonce, claims),
    welcomeMac(SECRET, 'other', serverNonce, clientNonce, claims),
  ];
  assert.equal(new Set([reference, ...variants]).size, variants.length + 1);
  // Neither the auth nor the session context can stand in for a welcome.
  assert.notEqual(reference, authMac(SECRET, 'home', serverNonce, clientNonce, { fingerprint: OBSERVED.ip, listenPort: OBSERVED.port }));
});

test('randomNonce gives valid, distinct 16-byte nonces', () => {
  const nonces = new Set(Array.from({ length: 1000 }, randomNonce));
  assert.equal(nonces.size, 1000);
  for (const nonce of [...nonces].slice(0, 50)) {
    assert.equal(Buffer.from(nonce, 'base64url').length, 16);
    assert.ok(parseMessage({ type: 'challenge', nonce }).ok, nonce);
  }
});

test('macEquals compares exactly', () => {
  const mac = hmacHex(SECRET, 'x');
  assert.equal(macEquals(mac, hmacHex(SECRET, 'x')), true);
  assert.equal(macEquals(mac, hmacHex(SECRET, 'y')), false);
  assert.equal(macEquals(mac, mac.slice(0, 63)), false);
  assert.equal(macEquals(mac, ''), false);
  assert.equal(macEquals(mac, mac.toUpperCase()), false);
});

test('canonicalJson sorts keys at every level and drops undefined like JSON does', () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [{ z: 1, y: 2 }], c: 'x' }, u: undefined }), '{"a":{"c":"x","d":[{"y":2,"z":1}]},"b":1}');
  assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
  assert.equal(canonicalJson('é\n'), JSON.stringify('é\n'));
});

test('sealed frames round-trip over the wire in both directions with counters from 1', () => {
  const { agent, server } = pair();
  for (let i = 1; i <= 3; i++) {
    const ping = agent.seal({ type: 'ping' });
    assert.equal(ping.seq, i);
    assert.deepEqual(server.open(overTheWire(ping)), { ok: true, value: ping });
    const pong = server.seal({ type: 'pong', observed: OBSERVED });
    assert.equal(pong.seq, i);
    assert.deepEqual(agent.open(overTheWire(pong)), { ok: true, value: pong });
  }
  const probe = server.seal({ type: 'probe', reachable: false, reason: 'refused', checkedAt: '2024-01-31T04:20:00.000Z' });
  assert.deepEqual(agent.open(overTheWire(probe)), { ok: true, value: probe });
  const admin = server.seal({ type: 'admin', id: 1, op: 'remove', cidr: '192.0.2.1/32', keyId: '0123456789ab', client: '192.0.2.1' });
  assert.deepEqual(agent.open(overTheWire(admin)), { ok: true, value: admin });
  const answer = agent.seal({ type: 'adminResult', id: 1, status: 200, body: '{"removed":1}' });
  assert.deepEqual(server.open(overTheWire(answer)), { ok: true, value: answer });
  const bye = agent.seal({ type: 'error', message: 'shutting down' });
  assert.deepEqual(server.open(overTheWire(bye)), { ok: true, value: bye });
});

test('a frame sealed with another key is refused', () => {
  const other = new SealedChannelState(sessionKey(SECRET, clientNonce, randomNonce()), 'agent');
  refused(pair().server.open(other.seal({ type: 'ping' })), /^"ping" seq 1 has a bad MAC$/);
  const wrongSecret = new SealedChannelState(sessionKey(`${SECRET}x`, clientNonce, serverNonce), 'agent');
  refused(pair().server.open(wrongSecret.seal({ type: 'ping' })), /bad MAC/);
});

test('any tampered field is refused', () => {
  const { server } = pair();
  const probe = server.seal({ type: 'probe', reachable: false, reason: 'timeout', checkedAt: '2024-01-31T04:20:00.000Z' });
  const pong = server.seal({ type: 'pong', observed: OBSERVED });
  const tampered: Message[] = [
    { ...probe, reachable: true },
    { ...probe, reason: 'timeouts' },
    { ...probe, checkedAt: '2024-01-31T04:20:00.001Z' },
    { type: 'probe', seq: probe.seq, mac: probe.mac, reachable: false, checkedAt: probe.checkedAt },
    { ...probe, seq: probe.seq + 1 },
    { ...probe, mac: probe.mac.replace(/^./, (c) => (c === '0' ? '1' : '0')) },
    { ...pong, observed: { ...OBSERVED, port: OBSERVED.port + 1 } },
    { ...pong, observed: { ...OBSERVED, ip: '198.51.100.1' } },
  ];
  const admin = server.seal({ type: 'admin', id: 3, op: 'add', cidr: '192.0.2.1/32', ttlMs: 60_000, keyId: '0123456789ab', client: '192.0.2.1' });
  tampered.push({ ...admin, cidr: '0.0.0.0/0' }, { ...admin, ttlMs: 60_001 }, { ...admin, note: 'added' }, { ...admin, id: 4 });
  for (const message of tampered) {
    refused(pair().agent.open(message), /bad MAC/);
  }
});

test('replayed, skipped and reordered frames are refused', () => {
  const { agent, server } = pair();
  const [first, second, third] = [agent.seal({ type: 'ping' }), agent.seal({ type: 'ping' }), agent.seal({ type: 'ping' })];
  assert.ok(server.open(first).ok);
  refused(server.open(first), /^"ping" seq 1 is replayed or reordered; expected seq 2$/);
  refused(server.open(third), /^"ping" seq 3 skips ahead \(a frame is missing\); expected seq 2$/);
  assert.ok(server.open(second).ok, 'a refused frame does not advance the counter');
  refused(server.open(second), /seq 2 is replayed/);
  assert.ok(server.open(third).ok);

  const fresh = pair().server;
  refused(fresh.open(second), /skips ahead/);
});

test('a frame is refused when fed back to its sender (direction confusion)', () => {
  const { agent, server } = pair();
  const pong = server.seal({ type: 'pong', observed: OBSERVED });
  refused(server.open(pong), /^"pong" is not a sealed message the agent sends$/);
  const ping = agent.seal({ type: 'ping' });
  refused(agent.open(ping), /^"ping" is not a sealed message the server sends$/);
  // Only the server gives admin orders, and only the agent answers them.
  refused(server.open(agent.seal({ type: 'admin', id: 1, op: 'list' })),
    /^"admin" is not a sealed message the agent sends$/);
  refused(agent.open(server.seal({ type: 'adminResult', id: 1, status: 200, body: '{}' })), /^"adminResult" is not a sealed message the server sends$/);
  // Both roles send `error`, so only the direction inside the MAC tells them apart.
  refused(server.open(server.seal({ type: 'error', message: 'bye' })), /bad MAC/);
  refused(agent.open(agent.seal({ type: 'error', message: 'bye' })), /bad MAC/);
});

test('handshake messages and unsealed errors are refused once the channel is sealed', () => {
  const { agent } = pair();
  refused(agent.open({ type: 'error', message: 'authentication failed' }), /^"error" after welcome must be sealed \(seq and mac\)$/);
  refused(agent.open({ type: 'challenge', nonce: randomNonce() }), /"challenge" is not a sealed message the server sends/);
  refused(agent.open({ type: 'welcome', mac: 'a'.repeat(64), observed: OBSERVED, heartbeatMs: 5000, seq: 0 }), /"welcome" is not a sealed/);
});

test('the MAC does not depend on key order, at any level', () => {
  const { agent, server } = pair();
  const pong = server.seal({ type: 'pong', observed: OBSERVED });
  const reordered = JSON.parse(`{"observed":{"port":${OBSERVED.port},"ip":"${OBSERVED.ip}"},"mac":"${pong.mac}","seq":1,"type":"pong"}`);
  assert.notEqual(JSON.stringify(reordered), JSON.stringify(pong));
  const opened = agent.open(reordered as Message); // as received, before anything rebuilds the object
  assert.ok(opened.ok, opened.ok ? '' : opened.error);
  assert.deepEqual(opened.value, pong satisfies SealedMessage);
});
