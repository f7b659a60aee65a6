import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES } from '../../src/protocol/framing.js';
import {
  ADMIN_RESULT_PART_CHARS,
  adminResultParts,
  MAX_ADMIN_TTL_MS,
  MAX_HEARTBEAT_MS,
  MIN_HEARTBEAT_MS,
  parseMessage,
  type Message,
} from '../../src/protocol/messages.js';
import { seededRandom } from '../helpers/seeded-random.js';

const NONCE = 'K9wHMIcUmXgFEHzn0PL4hw';
const MAC = 'a'.repeat(64);
const FINGERPRINT = '9A:6E:C0:12:E1:A7:DA:9D:BE:34:19:4D:47:8A:D7:C0:DB:18:22:FB:07:1D:F1:29:81:49:6E:D1:04:38:41:13';

/** One valid message of every type, with all optional fields set where there are any. */
const VALID: Message[] = [
  { type: 'hello', version: 1, agent: 'home-1', nonce: NONCE },
  { type: 'challenge', nonce: 'etfnKdvR-rrQX5BpZ3ZZBA' },
  { type: 'auth', mac: MAC, fingerprint: FINGERPRINT, publicHost: 'home.example.com', listenPort: 8443 },
  { type: 'welcome', mac: MAC, observed: { ip: '203.0.113.7', port: 40123 }, heartbeatMs: 5000, seq: 0 },
  { type: 'ping', seq: 1, mac: MAC },
  { type: 'pong', seq: 7, mac: MAC, observed: { ip: '2001:db8::7', port: 1 } },
  { type: 'probe', seq: 2, mac: MAC, reachable: false, reason: 'timeout after 5 s', checkedAt: '2024-02-29T04:20:00.000Z', path: 'relay' },
  { type: 'admin', seq: 4, mac: MAC, id: 1, op: 'add', cidr: '203.0.113.7/32', note: 'phone', ttlMs: 86_400_000, keyId: '0123456789ab', client: '203.0.113.7' },
  { type: 'adminResult', seq: 5, mac: MAC, id: 1, status: 201, body: '{"cidr":"203.0.113.7/32"', more: true },
  { type: 'workHello', version: 1, agent: 'home-1', nonce: NONCE, punch: 'etfnKdvR-rrQX5BpZ3ZZBA' },
  { type: 'workAuth', mac: MAC },
  { type: 'openWork', seq: 6, mac: MAC, count: 2 },
  { type: 'punch', seq: 8, mac: MAC, id: 'etfnKdvR-rrQX5BpZ3ZZBA', peer: { ip: '192.0.2.2', port: 20001 } },
  { type: 'connect', version: 1, agent: 'home-1', punch: true },
  { type: 'route', observed: { ip: '192.0.2.2', port: 20001 }, direct: { ip: '198.51.100.2', port: 20002 }, relayPort: 9443, peer: { ip: '198.51.100.2', port: 20003 }, reason: 'punched port unreachable' },
  { type: 'acmeChallenge', seq: 9, mac: MAC, id: 1, op: 'set', hostname: 'home.example.com', token: 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0', keyAuthorization: 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI' },
  { type: 'acmeChallengeResult', seq: 10, mac: MAC, id: 1, ok: false, error: 'home.example.com is not in this agent\'s acmeHostnames' },
  { type: 'error', message: 'authentication failed', seq: 3, mac: MAC },
];

/** Valid variants: optional fields left out, limits at their edges. */
const ALSO_VALID: Message[] = [
  { type: 'auth', mac: MAC, fingerprint: FINGERPRINT, listenPort: 65535 },
  { type: 'auth', mac: MAC, fingerprint: FINGERPRINT, listenPort: 1, publicHost: 'a' },
  { type: 'hello', version: 1, agent: 'x'.repeat(63), nonce: NONCE },
  { type: 'welcome', mac: MAC, observed: { ip: '::ffff:198.51.100.1', port: 65535 }, heartbeatMs: MIN_HEARTBEAT_MS, seq: 0 },
  { type: 'welcome', mac: MAC, observed: { ip: '198.51.100.1', port: 1 }, heartbeatMs: MAX_HEARTBEAT_MS, seq: 0 },
  { type: 'welcome', mac: MAC, observed: { ip: '198.51.100.1', port: 1 }, heartbeatMs: 5000, stunPort: 3478, seq: 0 },
  { type: 'welcome', mac: MAC, observed: { ip: '198.51.100.1', port: 1 }, heartbeatMs: 5000, stunPort: 65535, seq: 0 },
  { type: 'probe', seq: Number.MAX_SAFE_INTEGER, mac: MAC, reachable: true, checkedAt: '1999-12-31T23:59:59.999Z' },
  { type: 'error', message: 'x'.repeat(200) },
  { type: 'admin', seq: 1, mac: MAC, id: Number.MAX_SAFE_INTEGER, op: 'list' },
  { type: 'admin', seq: 1, mac: MAC, id: 2, op: 'add', cidr: '2001:db8::/32', ttlMs: MAX_ADMIN_TTL_MS, keyId: '0123456789ab', client: '::ffff:192.0.2.1' },
  { type: 'admin', seq: 1, mac: MAC, id: 3, op: 'remove', cidr: '0.0.0.0/0', keyId: 'ffffffffffff', client: '2001:db8::1' },
  { type: 'adminResult', seq: 1, mac: MAC, id: 3, status: 599, body: 'x'.repeat(ADMIN_RESULT_PART_CHARS) },
  { type: 'adminResult', seq: 1, mac: MAC, id: 3, status: 100, body: '}' },
];

const sample = (type: Message['type']): Record<string, unknown> => ({ ...VALID.find((m) => m.type === type)! });

test('every valid message parses to an equal, fresh object', () => {
  for (const message of [...VALID, ...ALSO_VALID]) {
    const parsed = parseMessage(JSON.parse(JSON.stringify(message)));
    assert.ok(parsed.ok, `${message.type}: ${parsed.ok ? '' : parsed.error}`);
    assert.deepEqual(parsed.value, message);
    assert.notEqual(parsed.value, message);
  }
});

test('the valid table covers every message type parseMessage knows', () => {
  const unknown = parseMessage({ type: 'nope' });
  assert.ok(!unknown.ok);
  const known = /known types: (.*)$/.exec(unknown.error)![1]!.split(', ');
  assert.deepEqual(known.sort(), VALID.map((m) => m.type).sort());
});

test('each invalid field is rejected with its path and what it must be', () => {
  const bad: [type: Message['type'], field: string, value: unknown, reason: RegExp][] = [
    ['hello', 'version', 2, /^hello\.version must be 1, the only protocol version this build speaks, not 2$/],
    ['hello', 'version', '1', /hello\.version must be 1/],
    ['hello', 'agent', 'Home', /^hello\.agent must be 1 to 63 characters of a-z, 0-9 and "-", not "Home"$/],
    ['hello', 'agent', '', /hello\.agent must be 1 to 63/],
    ['hello', 'agent', 'x'.repeat(64), /hello\.agent must be 1 to 63/],
    ['hello', 'agent', 'home\n', /hello\.agent must be/],
    ['hello', 'agent', 42, /hello\.agent must be .*, not 42$/],
    ['hello', 'nonce', 'K9wHMIcUmXgFEHzn0PL4h', /^hello\.nonce must be 16 bytes in base64url \(22 characters\)/],
    ['hello', 'nonce', 'K9wHMIcUmXgFEHzn0PL4hx', /hello\.nonce must be 16 bytes/], // last char carries unused bits
    ['hello', 'nonce', 'K9wHMIcUmXgFEHzn0PL4h=', /hello\.nonce must be 16 bytes/],
    ['hello', 'nonce', 'a'.repeat(32), /hello\.nonce must be 16 bytes/],
    ['challenge', 'nonce', null, /^challenge\.nonce must be 16 bytes .*, not null$/],
    ['auth', 'mac', 'A'.repeat(64), /^auth\.mac must be an HMAC-SHA256 in 64 lowercase hex digits/],
    ['auth', 'mac', 'a'.repeat(63), /auth\.mac must be/],
    ['auth', 'mac', 'g'.repeat(64), /auth\.mac must be/],
    ['auth', 'fingerprint', FINGERPRINT.toLowerCase(), /^auth\.fingerprint must be a SHA-256 fingerprint as 32 uppercase hex bytes/],
    ['auth', 'fingerprint', FINGERPRINT.slice(3), /auth\.fingerprint must be/],
    ['auth', 'fingerprint', FINGERPRINT.replaceAll(':', ''), /auth\.fingerprint must be/],
    ['auth', 'publicHost', 'home.example.com\nx', /^auth\.publicHost must be a DNS name such as home\.example\.com/],
    ['auth', 'publicHost', '-home.example.com', /auth\.publicHost must be a DNS name/],
    ['auth', 'publicHost', 'home..example.com', /auth\.publicHost must be a DNS name/],
    ['auth', 'publicHost', `${'a'.repeat(64)}.com`, /auth\.publicHost must be a DNS name/],
    ['auth', 'publicHost', Array.from({ length: 64 }, () => 'abc').join('.'), /auth\.publicHost must be a DNS name/],
    ['auth', 'publicHost', 'https://evil.example', /auth\.publicHost must be a DNS name/],
    ['auth', 'listenPort', 0, /^auth\.listenPort must be an integer from 1 to 65535, not 0$/],
    ['auth', 'listenPort', 65536, /auth\.listenPort must be an integer from 1 to 65535/],
    ['auth', 'listenPort', 80.5, /auth\.listenPort must be an integer/],
    ['auth', 'listenPort', '8443', /auth\.listenPort must be an integer.*, not "8443"$/],
    ['welcome', 'seq', 1, /^welcome\.seq must be 0, not 1$/],
    ['welcome', 'stunPort', 0, /^welcome\.stunPort must be an integer from 1 to 65535, not 0$/],
    ['welcome', 'stunPort', 65536, /^welcome\.stunPort must be an integer from 1 to 65535/],
    ['welcome', 'stunPort', '3478', /^welcome\.stunPort must be an integer from 1 to 65535, not "3478"$/],
    ['welcome', 'heartbeatMs', MIN_HEARTBEAT_MS - 1, /^welcome\.heartbeatMs must be an integer from 100 to 600000/],
    ['welcome', 'heartbeatMs', MAX_HEARTBEAT_MS + 1, /welcome\.heartbeatMs must be an integer/],
    ['welcome', 'observed', '203.0.113.7:40123', /^welcome\.observed must be an object \{ ip, port \}/],
    ['welcome', 'observed', [], /welcome\.observed must be an object/],
    ['welcome', 'observed', { ip: '203.0.113.300', port: 1 }, /^welcome\.observed\.ip must be an IPv4 or IPv6 address/],
    ['welcome', 'observed', { ip: 'example.com', port: 1 }, /welcome\.observed\.ip must be an IPv4 or IPv6 address/],
    ['welcome', 'observed', { ip: '203.0.113.7', port: 0 }, /^welcome\.observed\.port must be an integer from 1 to 65535/],
    ['welcome', 'observed', { ip: '203.0.113.7' }, /^welcome\.observed\.port is missing$/],
    ['welcome', 'observed', { ip: '203.0.113.7', port: 1, via: 'x' }, /^welcome\.observed has unknown field "via"; its fields are: ip, port$/],
    ['ping', 'seq', 0, /^ping\.seq must be an integer from 1 to 9007199254740991, not 0$/],
    ['ping', 'seq', -1, /ping\.seq must be an integer/],
    ['ping', 'seq', 2 ** 53, /ping\.seq must be an integer/],
    ['ping', 'seq', JSON.parse('1e400'), /ping\.seq must be an integer.*, not Infinity$/],
    ['ping', 'mac', undefined, /^ping\.mac is missing$/],
    ['pong', 'observed', { ip: '203.0.113.7', port: 70000 }, /pong\.observed\.port must be an integer from 1 to 65535/],
    ['probe', 'reachable', 'yes', /^probe\.reachable must be true or false, not "yes"$/],
    ['probe', 'reason', '', /^probe\.reason must be a string of 1 to 200 characters/],
    ['probe', 'reason', 'x'.repeat(201), /probe\.reason must be a string of 1 to 200 characters, not "x{30,}\.\.\."$/],
    ['probe', 'checkedAt', '2024-02-30T04:20:00.000Z', /^probe\.checkedAt must be a UTC time as Date\.toISOString\(\) prints it/],
    ['probe', 'checkedAt', '2024-02-29T04:20:00Z', /probe\.checkedAt must be a UTC time/],
    ['probe', 'checkedAt', '2024-02-29T04:20:00.000+08:00', /probe\.checkedAt must be a UTC time/],
    ['probe', 'checkedAt', 1709180400000, /probe\.checkedAt must be a UTC time/],
    ['error', 'message', 'x'.repeat(201), /^error\.message must be a string of 1 to 200 characters/],
    ['error', 'message', { text: 'x' }, /error\.message must be a string .*, not an object$/],
    ['error', 'mac', undefined, /^error: seq and mac come together or not at all$/],
    ['admin', 'id', 0, /^admin\.id must be an integer from 1 to 9007199254740991, not 0$/],
    ['admin', 'op', 'status', /^admin\.op must be one of list, add, remove, not "status"$/],
    ['admin', 'op', 'constructor', /admin\.op must be one of/],
    ['admin', 'cidr', '203.0.113.7', /^admin\.cidr must be a CIDR in canonical form such as "203\.0\.113\.7\/32"/],
    ['admin', 'cidr', '10.0.0.1/8', /admin\.cidr must be a CIDR in canonical form/],
    ['admin', 'cidr', '2001:DB8::/32', /admin\.cidr must be a CIDR in canonical form/],
    ['admin', 'cidr', 'x'.repeat(100), /admin\.cidr must be a CIDR/],
    ['admin', 'note', '', /^admin\.note must be a string of 1 to 200 characters/],
    ['admin', 'note', 'n'.repeat(201), /admin\.note must be a string of 1 to 200 characters/],
    ['admin', 'ttlMs', 0, /^admin\.ttlMs must be an integer from 1 to 315360000000, not 0$/],
    ['admin', 'ttlMs', MAX_ADMIN_TTL_MS + 1, /admin\.ttlMs must be an integer/],
    ['admin', 'ttlMs', '24h', /admin\.ttlMs must be an integer/],
    ['admin', 'ttlMs', undefined, /^admin: op "add" needs ttlMs$/],
    ['admin', 'cidr', undefined, /^admin: op "add" needs cidr$/],
    ['admin', 'keyId', '0123456789AB', /^admin\.keyId must be an admin key id of 12 lowercase hex digits/],
    ['admin', 'keyId', '0123456789abc', /admin\.keyId must be an admin key id/],
    ['admin', 'client', '203.0.113.7:4433', /^admin\.client must be an IPv4 or IPv6 address/],
    ['admin', 'client', undefined, /^admin: op "add" needs client$/],
    ['admin', 'keyId', undefined, /^admin: op "add" needs keyId$/],
    ['adminResult', 'status', 99, /^adminResult\.status must be an integer from 100 to 599, not 99$/],
    ['adminResult', 'status', 600, /adminResult\.status must be an integer from 100 to 599/],
    ['adminResult', 'body', '', /^adminResult\.body must be a string of 1 to 2048 characters/],
    ['adminResult', 'body', 'x'.repeat(ADMIN_RESULT_PART_CHARS + 1), /adminResult\.body must be a string of 1 to 2048 characters/],
    ['adminResult', 'body', { entries: [] }, /adminResult\.body must be a string .*, not an object$/],
    ['adminResult', 'more', false, /^adminResult\.more must be true, not false$/],
    ['adminResult', 'more', 1, /adminResult\.more must be true, not 1$/],
  ];
  for (const [type, field, value, reason] of bad) {
    const message = sample(type);
    message[field] = value;
    const label = `${type}.${field} = ${JSON.stringify(value)}`;
    const parsed = parseMessage(message);
    assert.ok(!parsed.ok, `${label} must be rejected`);
    assert.match(parsed.error, reason, label);
  }
});

test('admin: each operation takes exactly its fields; list names no actor (only changes are logged)', () => {
  const base = { type: 'admin', seq: 1, mac: MAC, id: 9, keyId: '0123456789ab', client: '192.0.2.1' };
  const list = { type: 'admin', seq: 1, mac: MAC, id: 9, op: 'list' };
  const cases: [fields: Record<string, unknown>, reason: RegExp][] = [
    [{ ...list, cidr: '192.0.2.1/32' }, /^admin: op "list" takes no cidr$/],
    [{ ...list, ttlMs: 1000 }, /^admin: op "list" takes no ttlMs$/],
    [{ ...list, keyId: '0123456789ab' }, /^admin: op "list" takes no keyId$/],
    [{ ...base, op: 'list' }, /^admin: op "list" takes no keyId$/],
    [{ op: 'remove', cidr: '192.0.2.1/32', keyId: undefined }, /^admin: op "remove" needs keyId$/],
    [{ op: 'remove' }, /^admin: op "remove" needs cidr$/],
    [{ op: 'remove', cidr: '192.0.2.1/32', note: 'x' }, /^admin: op "remove" takes no note$/],
    [{ op: 'remove', cidr: '192.0.2.1/32', ttlMs: 5 }, /^admin: op "remove" takes no ttlMs$/],
    [{ op: 'add', cidr: '192.0.2.1/32' }, /^admin: op "add" needs ttlMs$/],
  ];
  for (const [fields, reason] of cases) {
    const parsed = parseMessage(fields.type ? fields : { ...base, ...fields });
    assert.ok(!parsed.ok, JSON.stringify(fields));
    assert.match(parsed.error, reason);
  }
  assert.ok(parseMessage({ ...base, op: 'add', cidr: '192.0.2.1/32', ttlMs: 5 }).ok, 'a note is optional');
});

test('adminResultParts: any answer is cut into parts that each fit a frame and join back to the text', () => {
  const texts = [
    '{"removed":1}',
    'x'.repeat(ADMIN_RESULT_PART_CHARS),
    JSON.stringify({ entries: Array.from({ length: 400 }, (_, i) => ({ cidr: `10.0.${i >> 8}.${i & 255}/32`, note: `"quoted" ü 😀 ${i}` })) }),
    '\u0001'.repeat(3 * ADMIN_RESULT_PART_CHARS), // each takes the longest escape on the wire: 6 bytes
    '😀'.repeat(ADMIN_RESULT_PART_CHARS), // surrogate pairs cut in the middle
  ];
  for (const text of texts) {
    const parts = adminResultParts(7, 200, text);
    assert.equal(parts.length, Math.ceil(text.length / ADMIN_RESULT_PART_CHARS));
    let joined = '';
    parts.forEach((part, index) => {
      assert.equal(part.more, index < parts.length - 1 ? true : undefined);
      const sealed = { ...part, seq: index + 1, mac: MAC };
      const bytes = encodeFrame(sealed);
      assert.ok(bytes.length - 4 <= MAX_FRAME_BYTES);
      const decoded = new FrameDecoder().push(bytes);
      assert.ok(decoded.ok);
      const parsed = parseMessage(decoded.value[0]);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
      assert.ok(parsed.value.type === 'adminResult');
      joined += parsed.value.body;
    });
    assert.equal(joined, text);
  }
});

test('messages that are not objects, have no known type, or carry extra fields are rejected', () => {
  const cases: [value: unknown, reason: RegExp][] = [
    [null, /^a message must be a JSON object, not null$/],
    [[sample('ping')], /a message must be a JSON object, not an array/],
    ['ping', /a message must be a JSON object, not "ping"/],
    [{ seq: 1 }, /^message\.type must be a string, not undefined$/],
    [{ type: 3 }, /message\.type must be a string, not 3/],
    [{ type: 'reregister', seq: 1, mac: MAC }, /^message type "reregister" is unknown; known types: hello, /],
    [{ type: 'toString' }, /message type "toString" is unknown/],
    [{ type: '__proto__' }, /message type "__proto__" is unknown/],
    [{ ...sample('ping'), extra: true }, /^ping has unknown field "extra"; its fields are: type, seq, mac$/],
    [JSON.parse(`{"type":"ping","seq":1,"mac":"${MAC}","__proto__":{"admin":true}}`), /ping has unknown field "__proto__"/],
    [{ type: 'hello', version: 1, agent: 'home' }, /^hello\.nonce is missing$/],
    [{ type: 'auth', mac: MAC, fingerprint: FINGERPRINT, publicHost: 'h' }, /^auth\.listenPort is missing$/],
  ];
  for (const [value, reason] of cases) {
    const parsed = parseMessage(value);
    assert.ok(!parsed.ok, JSON.stringify(value));
    assert.match(parsed.error, reason, JSON.stringify(value));
  }
});

test('a JavaScript object with an undefined optional field parses like one without it', () => {
  const parsed = parseMessage({ type: 'auth', mac: MAC, fingerprint: FINGERPRINT, listenPort: 8443, publicHost: undefined });
  assert.ok(parsed.ok);
  assert.deepEqual(Object.keys(parsed.value), ['type', 'mac', 'fingerprint', 'listenPort']);
});

// ---- fuzz: random and mutated frames never make the decoder or the parser throw -----------------------

const ODD_VALUES: unknown[] = [null, true, 0, -1, 1.5, 1e300, '', 'x'.repeat(300), '\u0000', [], [1], {}, { ip: '1.2.3.4' }, '__proto__'];

function mutateObject(message: Record<string, unknown>, next: () => number): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(message)) as Record<string, unknown>;
  const keys = [...Object.keys(copy), 'extra', '__proto__'];
  const key = keys[Math.floor(next() * keys.length)]!;
  if (next() < 0.2) delete copy[key];
  else copy[key] = ODD_VALUES[Math.floor(next() * ODD_VALUES.length)];
  return copy;
}

function mutateBytes(frame: Buffer, next: () => number): Buffer {
  const bytes = Buffer.from(frame);
  const at = Math.floor(next() * bytes.length);
  const choice = next();
  if (choice < 0.4) bytes[at] = Math.floor(next() * 256);
  else if (choice < 0.6) return Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
  else if (choice < 0.8) return Buffer.concat([bytes.subarray(0, at), Buffer.from([Math.floor(next() * 256)]), bytes.subarray(at)]);
  else bytes.writeUInt32BE(Math.floor(next() * 2 ** 32), 0);
  return bytes;
}

function randomBytes(next: () => number): Buffer {
  const bytes = Buffer.alloc(Math.floor(next() * 64));
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
  // Half the time, give the garbage a plausible small length prefix so the JSON path is reached too.
  if (bytes.length >= 4 && next() < 0.5) bytes.writeUInt32BE(bytes.length - 4, 0);
  return bytes;
}

/** Feeds bytes in random chunks; returns how many messages parsed, or that the stream was refused. */
function feed(bytes: Buffer, next: () => number): { parsed: number; refused: boolean } {
  const decoder = new FrameDecoder();
  let parsed = 0;
  for (let offset = 0; offset < bytes.length; ) {
    const size = 1 + Math.floor(next() * 40);
    const frames = decoder.push(bytes.subarray(offset, offset + size));
    offset += size;
    if (!frames.ok) return { parsed, refused: true };
    for (const frame of frames.value) {
      const message = parseMessage(frame);
      if (!message.ok) return { parsed, refused: true };
      assert.deepEqual(parseMessage(JSON.parse(JSON.stringify(message.value))), message, 'a parsed message parses again unchanged');
      parsed += 1;
    }
  }
  return { parsed, refused: false };
}

test('fuzz: random bytes and mutated frames give ok or an error, never an exception', () => {
  const next = seededRandom(0x5eed);
  let refused = 0;
  let parsed = 0;
  for (let round = 0; round < 3000; round++) {
    const base = VALID[round % VALID.length] as unknown as Record<string, unknown>;
    const inputs = [randomBytes(next), mutateBytes(encodeFrame(base), next), encodeFrame(mutateObject(base, next))];
    for (const bytes of inputs) {
      const outcome = feed(bytes, next);
      refused += outcome.refused ? 1 : 0;
      parsed += outcome.parsed;
    }
  }
  // Both outcomes must occur, or the fuzz exercised nothing.
  assert.ok(refused > 3000, `refused ${refused}`);
  assert.ok(parsed > 100, `parsed ${parsed}`);
});
