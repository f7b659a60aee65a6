import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_OPEN_WORK, parseMessage } from '../../src/protocol/messages.js';
import { randomNonce } from '../../src/common/nonce.js';
import { authMac, SealedChannelState, sessionKey, workKey, workMac, type Role } from '../../src/protocol/session.js';

const NONCE = 'K9wHMIcUmXgFEHzn0PL4hw';
const NONCE_2 = 'AAAAAAAAAAAAAAAAAAAAAA';
const MAC = 'a'.repeat(64);
const OBSERVED = { ip: '198.51.100.2', port: 41000 };

const VALID: Record<string, unknown>[] = [
  { type: 'workHello', version: 1, agent: 'home', nonce: NONCE },
  { type: 'workHello', version: 1, agent: 'home-1', nonce: NONCE, punch: NONCE_2 },
  { type: 'workAuth', mac: MAC },
  ...Array.from({ length: MAX_OPEN_WORK }, (_, index) => ({ type: 'openWork', seq: 1, mac: MAC, count: index + 1 })),
  { type: 'punch', seq: 7, mac: MAC, id: NONCE, peer: OBSERVED },
  { type: 'punch', seq: 7, mac: MAC, id: NONCE, peer: { ip: '2001:db8::1', port: 1 } },
  { type: 'connect', version: 1, agent: 'home', punch: true },
  { type: 'connect', version: 1, agent: 'home', punch: false },
  { type: 'route', observed: OBSERVED },
  { type: 'route', observed: OBSERVED, direct: { ip: '203.0.113.7', port: 443 }, relayPort: 9443, peer: { ip: '203.0.113.7', port: 50000 }, reason: 'the punched port is unreachable' },
  { type: 'route', observed: { ip: '::1', port: 65535 }, relayPort: 1 },
  ...(['direct', 'relay', 'none'] as const).map((path) => ({ type: 'probe', seq: 2, mac: MAC, reachable: path === 'direct', checkedAt: '2030-01-01T04:00:07.000Z', path })),
  { type: 'probe', seq: 2, mac: MAC, reachable: false, checkedAt: '2030-01-01T04:00:07.000Z', reason: 'timeout', path: 'relay' },
];

test('valid relay and punch messages are accepted as a copy holding the same fields', () => {
  for (const message of VALID) {
    const parsed = parseMessage(JSON.parse(JSON.stringify(message)));
    assert.ok(parsed.ok, `${JSON.stringify(message)}: ${parsed.ok ? '' : parsed.error}`);
    assert.deepEqual(parsed.value, message);
  }
});

/** [message, the error must start with]: each has exactly one thing wrong. */
const WRONG: [message: Record<string, unknown>, error: RegExp][] = [
  [{ type: 'workHello', version: 2, agent: 'home', nonce: NONCE }, /^workHello\.version must be 1/],
  [{ type: 'workHello', version: '1', agent: 'home', nonce: NONCE }, /^workHello\.version must be 1/],
  [{ type: 'workHello', version: 1, agent: 'Home', nonce: NONCE }, /^workHello\.agent must be/],
  [{ type: 'workHello', version: 1, agent: 'x'.repeat(64), nonce: NONCE }, /^workHello\.agent must be/],
  [{ type: 'workHello', version: 1, agent: 'home', nonce: 'short' }, /^workHello\.nonce must be 16 bytes/],
  [{ type: 'workHello', version: 1, agent: 'home', nonce: NONCE.slice(0, 21) + 'B' }, /^workHello\.nonce must be/], // not canonical base64url
  [{ type: 'workHello', version: 1, agent: 'home', nonce: NONCE, punch: 'abc' }, /^workHello\.punch must be 16 bytes/],
  [{ type: 'workHello', version: 1, agent: 'home', nonce: NONCE, punch: true }, /^workHello\.punch must be/],
  [{ type: 'workHello', version: 1, agent: 'home' }, /^workHello\.nonce is missing/],
  [{ type: 'workHello', version: 1, nonce: NONCE }, /^workHello\.agent is missing/],
  [{ type: 'workAuth', mac: MAC.toUpperCase() }, /^workAuth\.mac must be an HMAC-SHA256/],
  [{ type: 'workAuth', mac: MAC.slice(1) }, /^workAuth\.mac must be/],
  [{ type: 'workAuth' }, /^workAuth\.mac is missing/],
  [{ type: 'openWork', seq: 1, mac: MAC, count: 0 }, /^openWork\.count must be an integer from 1 to 16/],
  [{ type: 'openWork', seq: 1, mac: MAC, count: 17 }, /^openWork\.count must be an integer from 1 to 16/],
  [{ type: 'openWork', seq: 1, mac: MAC, count: 1.5 }, /^openWork\.count must be/],
  [{ type: 'openWork', seq: 1, mac: MAC, count: '2' }, /^openWork\.count must be/],
  [{ type: 'openWork', seq: 1, mac: MAC }, /^openWork\.count is missing/],
  [{ type: 'openWork', seq: 0, mac: MAC, count: 1 }, /^openWork\.seq must be/],
  [{ type: 'openWork', seq: 1, count: 1 }, /^openWork\.mac is missing/],
  [{ type: 'punch', seq: 1, mac: MAC, id: 'x', peer: OBSERVED }, /^punch\.id must be 16 bytes/],
  [{ type: 'punch', seq: 1, mac: MAC, id: NONCE, peer: { ip: '198.51.100.300', port: 1 } }, /^punch\.peer\.ip must be an IPv4 or IPv6 address/],
  [{ type: 'punch', seq: 1, mac: MAC, id: NONCE, peer: { ip: 'example.com', port: 1 } }, /^punch\.peer\.ip must be/],
  [{ type: 'punch', seq: 1, mac: MAC, id: NONCE, peer: { ip: '198.51.100.2', port: 0 } }, /^punch\.peer\.port must be an integer from 1 to 65535/],
  [{ type: 'punch', seq: 1, mac: MAC, id: NONCE, peer: { ip: '198.51.100.2', port: 65536 } }, /^punch\.peer\.port must be/],
  [{ type: 'punch', seq: 1, mac: MAC, id: NONCE, peer: { ip: '198.51.100.2' } }, /^punch\.peer\.port is missing/],
  [{ type: 'punch', seq: 1, mac: MAC, id: NONCE, peer: '198.51.100.2:1' }, /^punch\.peer must be an object/],
  [{ type: 'punch', seq: 1, mac: MAC, id: NONCE, peer: { ...OBSERVED, via: 'x' } }, /^punch\.peer has unknown field "via"/],
  [{ type: 'punch', seq: 1, mac: MAC, peer: OBSERVED }, /^punch\.id is missing/],
  [{ type: 'connect', version: 1, agent: 'home', punch: 'yes' }, /^connect\.punch must be true or false/],
  [{ type: 'connect', version: 1, agent: 'home', punch: 1 }, /^connect\.punch must be true or false/],
  [{ type: 'connect', version: 1, agent: 'home' }, /^connect\.punch is missing/],
  [{ type: 'connect', version: 0, agent: 'home', punch: true }, /^connect\.version must be 1/],
  [{ type: 'connect', version: 1, agent: 'ho me', punch: true }, /^connect\.agent must be/],
  [{ type: 'route' }, /^route\.observed is missing/],
  [{ type: 'route', observed: OBSERVED, relayPort: 0 }, /^route\.relayPort must be an integer from 1 to 65535/],
  [{ type: 'route', observed: OBSERVED, relayPort: '9443' }, /^route\.relayPort must be/],
  [{ type: 'route', observed: OBSERVED, direct: { ip: 'x', port: 1 } }, /^route\.direct\.ip must be/],
  [{ type: 'route', observed: OBSERVED, peer: { ip: '192.0.2.1', port: 1.5 } }, /^route\.peer\.port must be/],
  [{ type: 'route', observed: OBSERVED, reason: '' }, /^route\.reason must be a string of 1 to 200 characters/],
  [{ type: 'route', observed: OBSERVED, reason: 'x'.repeat(201) }, /^route\.reason must be a string of 1 to 200/],
  [{ type: 'probe', seq: 2, mac: MAC, reachable: true, checkedAt: '2030-01-01T04:00:07.000Z', path: 'tunnel' }, /^probe\.path must be one of direct, relay, none/],
  [{ type: 'probe', seq: 2, mac: MAC, reachable: true, checkedAt: '2030-01-01T04:00:07.000Z', path: null }, /^probe\.path must be one of/],
  [{ type: 'probe', seq: 2, mac: MAC, reachable: true, checkedAt: '2030-01-01T04:00:07.000Z', path: 'DIRECT' }, /^probe\.path must be one of/],
];

test('each wrong field is refused with an error naming it', () => {
  for (const [message, error] of WRONG) {
    const parsed = parseMessage(message);
    assert.equal(parsed.ok, false, `accepted: ${JSON.stringify(message)}`);
    if (!parsed.ok) assert.match(parsed.error, error, JSON.stringify(message));
  }
});

test('unknown fields are refused on every new type, naming the field', () => {
  const bases: Record<string, unknown>[] = [
    { type: 'workHello', version: 1, agent: 'home', nonce: NONCE },
    { type: 'workAuth', mac: MAC },
    { type: 'openWork', seq: 1, mac: MAC, count: 1 },
    { type: 'punch', seq: 1, mac: MAC, id: NONCE, peer: OBSERVED },
    { type: 'connect', version: 1, agent: 'home', punch: true },
    { type: 'route', observed: OBSERVED },
    { type: 'probe', seq: 2, mac: MAC, reachable: true, checkedAt: '2030-01-01T04:00:07.000Z', path: 'direct' },
  ];
  for (const base of bases) {
    for (const extra of ['relay', 'fingerprint', '__proto__x', 'count2']) {
      const parsed = parseMessage({ ...base, [extra]: 1 });
      assert.equal(parsed.ok, false, `${base.type as string} + ${extra}`);
      if (!parsed.ok) assert.match(parsed.error, new RegExp(`^${base.type as string} has unknown field "${extra}"`));
    }
  }
  // a field of another new type is unknown here too
  assert.match(errorOf({ type: 'workAuth', mac: MAC, punch: NONCE }), /^workAuth has unknown field "punch"/);
  assert.match(errorOf({ type: 'connect', version: 1, agent: 'home', punch: true, nonce: NONCE }), /^connect has unknown field "nonce"/);
});

function errorOf(message: unknown): string {
  const parsed = parseMessage(message);
  assert.equal(parsed.ok, false, JSON.stringify(message));
  return parsed.ok ? '' : parsed.error;
}

const SECRET = 'correct-horse-battery-staple';
const OTHER_NONCE = 'BBBBBBBBBBBBBBBBBBBBBA';

test('workMac changes when any input changes: secret, agent, either nonce, punch id', () => {
  const base = workMac(SECRET, 'home', NONCE, NONCE_2, undefined);
  assert.match(base, /^[0-9a-f]{64}$/);
  assert.equal(workMac(SECRET, 'home', NONCE, NONCE_2, undefined), base, 'deterministic');
  const variants: [name: string, mac: string][] = [
    ['secret', workMac(`${SECRET}!`, 'home', NONCE, NONCE_2, undefined)],
    ['secret as bytes of another text', workMac(Buffer.from('another-secret-of-16'), 'home', NONCE, NONCE_2, undefined)],
    ['agent', workMac(SECRET, 'home-2', NONCE, NONCE_2, undefined)],
    ['client nonce', workMac(SECRET, 'home', OTHER_NONCE, NONCE_2, undefined)],
    ['server nonce', workMac(SECRET, 'home', NONCE, OTHER_NONCE, undefined)],
    ['nonces swapped', workMac(SECRET, 'home', NONCE_2, NONCE, undefined)],
    ['a punch id', workMac(SECRET, 'home', NONCE, NONCE_2, OTHER_NONCE)],
    ['another punch id', workMac(SECRET, 'home', NONCE, NONCE_2, NONCE)],
    ['the hello handshake\'s auth MAC', authMac(SECRET, 'home', NONCE, NONCE_2, { fingerprint: '', listenPort: 0 })],
  ];
  const seen = new Set([base]);
  for (const [name, mac] of variants) {
    assert.notEqual(mac, base, name);
    assert.ok(!seen.has(mac), `${name} collides with another variant`);
    seen.add(mac);
  }
});

test('workKey is 32 bytes, differs per nonce pair and secret, and is not the session key', () => {
  const key = workKey(SECRET, NONCE, NONCE_2);
  assert.equal(key.length, 32);
  assert.deepEqual(workKey(SECRET, NONCE, NONCE_2), key, 'deterministic');
  const others: [name: string, other: Buffer][] = [
    ['client nonce', workKey(SECRET, OTHER_NONCE, NONCE_2)],
    ['server nonce', workKey(SECRET, NONCE, OTHER_NONCE)],
    ['swapped', workKey(SECRET, NONCE_2, NONCE)],
    ['secret', workKey('another-secret-of-16', NONCE, NONCE_2)],
    ['session key of the same nonces', sessionKey(SECRET, NONCE, NONCE_2)],
  ];
  for (const [name, other] of others) assert.notDeepEqual(other, key, name);
  // fresh nonces every time: keys never repeat
  const keys = new Set(Array.from({ length: 50 }, () => workKey(SECRET, randomNonce(), randomNonce()).toString('hex')));
  assert.equal(keys.size, 50);
});

test('an agent-role channel opens sealed openWork and punch from the server, and refuses them sealed by the agent role', () => {
  const key = sessionKey(SECRET, NONCE, NONCE_2);
  const wire = (sealed: object): ReturnType<typeof parseMessage> => parseMessage(JSON.parse(JSON.stringify(sealed)));
  const orders = [
    { type: 'openWork' as const, count: 3 },
    { type: 'punch' as const, id: NONCE, peer: OBSERVED },
    { type: 'openWork' as const, count: 16 },
  ];
  const server = new SealedChannelState(key, 'server');
  const agent = new SealedChannelState(key, 'agent');
  for (const order of orders) {
    const parsed = wire(server.seal(order));
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
    const opened = agent.open(parsed.value);
    assert.ok(opened.ok, `${order.type}: ${opened.ok ? '' : opened.error}`);
    assert.deepEqual({ ...opened.value, seq: undefined, mac: undefined }, { ...order, seq: undefined, mac: undefined });
  }

  for (const order of orders) {
    // sealed by an agent-role state (a reflected or forged frame), opened by the agent: refused
    const forger = new SealedChannelState(key, 'agent' as Role);
    const receiver = new SealedChannelState(key, 'agent');
    const parsed = wire(forger.seal(order));
    assert.ok(parsed.ok);
    const opened = receiver.open(parsed.value);
    assert.equal(opened.ok, false, order.type);
    if (!opened.ok) assert.match(opened.error, /bad MAC/, order.type);
    // and a server never takes them from an agent, whoever sealed them
    const atServer = new SealedChannelState(key, 'server').open(parsed.value);
    assert.equal(atServer.ok, false);
    if (!atServer.ok) assert.match(atServer.error, new RegExp(`"${order.type}" is not a sealed message the agent sends`));
  }

  // sealed by the server with another key: refused
  const stranger = new SealedChannelState(sessionKey(SECRET, NONCE, OTHER_NONCE), 'server');
  const parsed = wire(stranger.seal({ type: 'openWork', count: 1 }));
  assert.ok(parsed.ok);
  const opened = new SealedChannelState(key, 'agent').open(parsed.value);
  assert.equal(opened.ok, false);
  // a changed count breaks the MAC
  const sealed = new SealedChannelState(key, 'server').seal({ type: 'openWork', count: 1 });
  const tampered = wire({ ...sealed, count: 16 });
  assert.ok(tampered.ok);
  assert.equal(new SealedChannelState(key, 'agent').open(tampered.value).ok, false);
});
