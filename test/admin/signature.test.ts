import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  authorizationHeader,
  parseAuthorization,
  sha256Hex,
  sign,
  signatureMatches,
  stringToSign,
  type SignedRequest,
} from '../../src/admin/signature.js';

const SECRET = 'Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx';
const KEY = { id: '0123456789ab', secret: SECRET };
const BODY = '{"cidr":"203.0.113.7/32"}';
const REQUEST: SignedRequest = {
  method: 'post',
  target: '/api/agents/home/whitelist?x=1&y=%2F',
  timestamp: 1764100000,
  nonce: 'AAAAAAAAAAAAAAAAAAAAAA',
  bodySha256: sha256Hex(BODY),
};

test('the signature matches one computed independently (openssl dgst -sha256 -hmac over the same string)', () => {
  assert.equal(
    stringToSign(REQUEST),
    'HOMEPORT-HMAC-SHA256\nPOST\n/api/agents/home/whitelist\nx=1&y=%2F\n1764100000\nAAAAAAAAAAAAAAAAAAAAAA\n6766310e7e136e31d6b0de60fdb13bb984e87e76374a6871261ef0a29770fbfb',
  );
  assert.equal(sign(SECRET, REQUEST), 'e3e2f204a9dd5ca2a9aa727da9d7dc9143a9c9ccd6a1823a6872dc076cce9d4c');
});

test('any change to what was signed breaks the signature', () => {
  const signature = sign(SECRET, REQUEST);
  assert.ok(signatureMatches(SECRET, REQUEST, signature));
  const changes: Array<[string, Partial<SignedRequest>]> = [
    ['method', { method: 'DELETE' }],
    ['path', { target: '/api/agents/other/whitelist?x=1&y=%2F' }],
    ['query', { target: '/api/agents/home/whitelist?x=2&y=%2F' }],
    ['query moved into the path', { target: '/api/agents/home/whitelist/x=1&y=%2F' }],
    ['timestamp', { timestamp: REQUEST.timestamp + 1 }],
    ['nonce', { nonce: 'AAAAAAAAAAAAAAAAAAAAAB' }],
    ['body', { bodySha256: sha256Hex('{"cidr":"0.0.0.0/0"}') }],
  ];
  for (const [what, change] of changes) {
    assert.equal(signatureMatches(SECRET, { ...REQUEST, ...change }, signature), false, what);
  }
  assert.equal(signatureMatches('x'.repeat(43), REQUEST, signature), false, 'another secret');
  assert.equal(signatureMatches(SECRET, REQUEST, signature.toUpperCase()), false, 'not the canonical hex');
  assert.equal(signatureMatches(SECRET, REQUEST, signature.slice(2)), false, 'truncated');
});

test('a header made by authorizationHeader parses back and verifies', () => {
  const header = authorizationHeader(KEY, { method: 'POST', target: '/api/whitelist', body: BODY }, { nowMs: 1764100000_999 });
  const parsed = parseAuthorization(header);
  assert.ok(parsed.ok);
  assert.equal(parsed.value.keyId, KEY.id);
  assert.equal(parsed.value.timestamp, 1764100000);
  const request = { method: 'POST', target: '/api/whitelist', timestamp: parsed.value.timestamp, nonce: parsed.value.nonce, bodySha256: sha256Hex(BODY) };
  assert.ok(signatureMatches(SECRET, request, parsed.value.signature));
  const other = parseAuthorization(authorizationHeader(KEY, { method: 'GET', target: '/api/status' }));
  assert.ok(other.ok && other.value.nonce !== parsed.value.nonce, 'each request gets a fresh nonce');
});

test('malformed Authorization headers are refused with the reason', () => {
  const good = `HOMEPORT-HMAC key=${KEY.id}, ts=1764100000, nonce=AAAAAAAAAAAAAAAAAAAAAA, sig=${'a'.repeat(64)}`;
  assert.ok(parseAuthorization(good).ok);
  const cases: Array<[string | undefined, RegExp]> = [
    [undefined, /no Authorization header/],
    ['', /no Authorization header/],
    [good.replace('HOMEPORT-HMAC', 'Bearer'), /scheme must be HOMEPORT-HMAC/],
    [good.replace(`key=${KEY.id}`, 'key=ZZ'), /key= must be a key id/],
    [good.replace('ts=1764100000', 'ts=-5'), /ts= must be the Unix time/],
    [good.replace('ts=1764100000', 'ts=1e9'), /ts= must be the Unix time/],
    [good.replace('nonce=AAAAAAAAAAAAAAAAAAAAAA', 'nonce=short'), /nonce= must be 16 random bytes/],
    [good.replace(`sig=${'a'.repeat(64)}`, `sig=${'A'.repeat(64)}`), /sig= must be an HMAC-SHA256/],
    [`${good}, key=${KEY.id}`, /once each/],
    [good.replace(', nonce=AAAAAAAAAAAAAAAAAAAAAA', ''), /nonce= must be/],
    [`${good}, extra=1`, /once each/],
  ];
  for (const [header, message] of cases) {
    const parsed = parseAuthorization(header);
    assert.equal(parsed.ok, false, String(header));
    assert.match(parsed.ok ? '' : parsed.error, message, String(header));
  }
});
