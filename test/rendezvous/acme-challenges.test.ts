import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answerChallengeRequest, ChallengeStore, RENDEZVOUS_OWNER, type ChallengeRequest } from '../../src/rendezvous/acme-challenges.js';

/** Tokens and key authorizations shaped as Pebble and Let's Encrypt make them. */
const token = (char: string): string => char.repeat(43);
const keyAuth = (tokenText: string): string => `${tokenText}.${'T'.repeat(43)}`;
const A = token('a');
const B = token('b');

function clockedStore(options: { ttlMs?: number; maxPerOwner?: number } = {}): { store: ChallengeStore; advance(ms: number): void } {
  let now = 1_000_000;
  return { store: new ChallengeStore({ ...options, now: () => now }), advance: (ms) => { now += ms; } };
}

test('a key authorization is served for the hostname and token it was set for, until unset', () => {
  const { store } = clockedStore();
  assert.deepEqual(store.set('home', 'Home.Example.com', A, keyAuth(A)), { ok: true, value: undefined });
  assert.equal(store.lookup('home.example.com', A), keyAuth(A), 'the hostname is kept lower-cased');
  assert.equal(store.lookup('other.example.com', A), undefined, 'another name gets nothing');
  assert.equal(store.lookup('home.example.com', B), undefined, 'another token gets nothing');
  store.unset('cabin', 'home.example.com', A);
  assert.equal(store.lookup('home.example.com', A), keyAuth(A), 'another owner cannot unset it');
  store.unset('home', 'HOME.example.com', A);
  assert.equal(store.lookup('home.example.com', A), undefined);
  assert.equal(store.countOf('home'), 0);
  store.unset('home', 'home.example.com', A); // twice is harmless
});

test('entries expire after the TTL, so a crashed agent leaves nothing answered; a set again starts the TTL afresh', () => {
  const { store, advance } = clockedStore({ ttlMs: 600_000 });
  store.set('home', 'home.example.com', A, keyAuth(A));
  advance(300_000);
  store.set('home', 'home.example.com', B, keyAuth(B));
  advance(299_999);
  assert.equal(store.lookup('home.example.com', A), keyAuth(A));
  advance(1);
  assert.equal(store.lookup('home.example.com', A), undefined, 'A expired');
  assert.equal(store.lookup('home.example.com', B), keyAuth(B), 'B lives on');
  assert.equal(store.countOf('home'), 1);
  store.set('home', 'home.example.com', B, keyAuth(B)); // refreshed: moved to the end of the expiry order
  advance(599_999);
  assert.equal(store.lookup('home.example.com', B), keyAuth(B));
  advance(1);
  assert.equal(store.countOf('home'), 0);
});

test('one owner holds at most maxPerOwner entries; expired and unset ones free their places; others are not affected', () => {
  const { store, advance } = clockedStore({ ttlMs: 1000, maxPerOwner: 3 });
  const tokens = ['c', 'd', 'e', 'f'].map(token);
  for (const each of tokens.slice(0, 3)) assert.ok(store.set('home', 'home.example.com', each, keyAuth(each)).ok);
  assert.deepEqual(store.set('home', 'home.example.com', tokens[3]!, keyAuth(tokens[3]!)), {
    ok: false, error: '3 challenges are set already, the most one agent may have; unset finished ones first',
  });
  assert.ok(store.set('home', 'home.example.com', tokens[0]!, keyAuth(tokens[0]!)).ok, 'setting a held entry again takes no new place');
  assert.ok(store.set('cabin', 'cabin.example.com', A, keyAuth(A)).ok, 'another owner has its own places');
  store.unset('home', 'home.example.com', tokens[1]!);
  assert.ok(store.set('home', 'home.example.com', tokens[3]!, keyAuth(tokens[3]!)).ok, 'an unset frees a place');
  advance(1000);
  assert.equal(store.countOf('home'), 0);
  assert.equal(store.countOf('cabin'), 0);
});

test('set refuses what could never be answered, and a token another owner holds for the same name', () => {
  const { store } = clockedStore();
  const cases: [hostname: string, tokenText: string, keyAuthorization: string, error: string][] = [
    ['203.0.113.7', A, keyAuth(A), '"203.0.113.7" is not a DNS name the rendezvous answers HTTP-01 for'],
    ['*.example.com', A, keyAuth(A), '"*.example.com" is not a DNS name the rendezvous answers HTTP-01 for'],
    ['localhost', A, keyAuth(A), '"localhost" is not a DNS name the rendezvous answers HTTP-01 for'],
    ['home.example.com', 'short', keyAuth('short'), 'the token is not 22 to 128 base64url characters'],
    ['home.example.com', `${A}/`, keyAuth(A), 'the token is not 22 to 128 base64url characters'],
    ['home.example.com', A, keyAuth(B), 'the key authorization is not "<token>.<thumbprint>"'],
    ['home.example.com', A, `${A}.`, 'the key authorization is not "<token>.<thumbprint>"'],
  ];
  for (const [hostname, tokenText, keyAuthorization, error] of cases) {
    assert.deepEqual(store.set('home', hostname, tokenText, keyAuthorization), { ok: false, error }, `${hostname} ${tokenText}`);
  }
  assert.ok(store.set(RENDEZVOUS_OWNER, 'rv.example.com', A, keyAuth(A)).ok);
  assert.deepEqual(store.set('home', 'rv.example.com', A, keyAuth(A)), { ok: false, error: 'the token for rv.example.com is set by someone else already' });
  assert.equal(store.countOf('home'), 0);
});

test('responder(owner) is an Http01Responder over the store: set resolves once served, a refusal rejects with the reason', async () => {
  const { store } = clockedStore();
  const responder = store.responder(RENDEZVOUS_OWNER);
  await responder.set('rv.example.com', A, keyAuth(A));
  assert.equal(store.lookup('rv.example.com', A), keyAuth(A));
  await assert.rejects(responder.set('rv.example.com', 'x', 'x.y'), /^Error: the token is not 22 to 128 base64url characters$/);
  await responder.unset('rv.example.com', A);
  assert.equal(store.lookup('rv.example.com', A), undefined);
});

test('answerChallengeRequest: only GET of a set token for the Host it was set for gets the key authorization', () => {
  const lookup = (hostname: string, tokenText: string): string | undefined => (hostname === 'home.example.com' && tokenText === A ? keyAuth(A) : undefined);
  const path = `/.well-known/acme-challenge/${A}`;
  const request = (fields: Partial<ChallengeRequest>): ChallengeRequest => ({ method: 'GET', url: path, host: 'home.example.com', ...fields });
  const answered = { status: 200, body: keyAuth(A), hostname: 'home.example.com' };
  const cases: [name: string, fields: Partial<ChallengeRequest>, expected: object][] = [
    ['the CA\'s request', {}, answered],
    ['Host with a port', { host: 'home.example.com:80' }, answered],
    ['Host in capitals', { host: 'HOME.Example.COM' }, answered],
    ['another Host', { host: 'other.example.com' }, { status: 404, hostname: 'other.example.com', why: 'no such challenge for this host' }],
    ['another token', { url: `/.well-known/acme-challenge/${B}` }, { status: 404, hostname: 'home.example.com', why: 'no such challenge for this host' }],
    ['no Host', { host: undefined }, { status: 404, why: 'malformed token or Host' }],
    ['an IP as Host', { host: '127.0.0.1:80' }, { status: 404, why: 'malformed token or Host' }],
    ['an IPv6 Host', { host: '[::1]:80' }, { status: 404, why: 'malformed token or Host' }],
    ['a Host with a trailing dot', { host: 'home.example.com.' }, { status: 404, why: 'malformed token or Host' }],
    ['a Host with junk', { host: 'home.example.com\u0000' }, { status: 404, why: 'malformed token or Host' }],
    ['a Host with a bad port', { host: 'home.example.com:http' }, { status: 404, why: 'malformed token or Host' }],
    ['a short token', { url: '/.well-known/acme-challenge/abc' }, { status: 404, why: 'malformed token or Host' }],
    ['an empty token', { url: '/.well-known/acme-challenge/' }, { status: 404, why: 'malformed token or Host' }],
    ['an encoded token', { url: `/.well-known/acme-challenge/%41${A.slice(1)}` }, { status: 404, why: 'malformed token or Host' }],
    ['HEAD', { method: 'HEAD' }, { status: 404, why: 'not a challenge request' }],
    ['POST', { method: 'POST' }, { status: 404, why: 'not a challenge request' }],
    ['a query', { url: `${path}?x=1` }, { status: 404, why: 'not a challenge request' }],
    ['a fragment', { url: `${path}#x` }, { status: 404, why: 'not a challenge request' }],
    ['a trailing slash', { url: `${path}/` }, { status: 404, why: 'not a challenge request' }],
    ['a path around it', { url: `/x${path}` }, { status: 404, why: 'not a challenge request' }],
    ['dot segments', { url: `/.well-known/acme-challenge/../acme-challenge/${A}` }, { status: 404, why: 'not a challenge request' }],
    ['an absolute URL', { url: `http://home.example.com${path}` }, { status: 404, why: 'not a challenge request' }],
    ['the root', { url: '/' }, { status: 404, why: 'not a challenge request' }],
    ['an asterisk', { url: '*' }, { status: 404, why: 'not a challenge request' }],
  ];
  for (const [name, fields, expected] of cases) {
    const { body, ...rest } = answerChallengeRequest(request(fields), lookup);
    const { body: expectedBody = 'not found\n', ...expectedRest } = expected as { body?: string };
    assert.deepEqual(rest, expectedRest, name);
    assert.equal(body, expectedBody, name);
  }
});
