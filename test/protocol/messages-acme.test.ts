import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMessage } from '../../src/protocol/messages.js';
import { SealedChannelState, sessionKey } from '../../src/protocol/session.js';

const MAC = 'a'.repeat(64);
/** A token and key authorization as Pebble and Let's Encrypt make them: 43 base64url characters each side. */
const TOKEN = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
const THUMBPRINT = '9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI';
const KEY_AUTH = `${TOKEN}.${THUMBPRINT}`;
const SET = { type: 'acmeChallenge', seq: 1, mac: MAC, id: 1, op: 'set', hostname: 'home.example.com', token: TOKEN, keyAuthorization: KEY_AUTH };
const UNSET = { type: 'acmeChallenge', seq: 1, mac: MAC, id: 2, op: 'unset', hostname: 'home.example.com', token: TOKEN };
const RESULT = { type: 'acmeChallengeResult', seq: 1, mac: MAC, id: 1, ok: true };

const VALID: Record<string, unknown>[] = [
  SET,
  UNSET,
  { ...SET, hostname: 'a.b' },
  { ...SET, hostname: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}` }, // 253 characters
  { ...SET, hostname: 'xn--bcher-kva.example' },
  { ...SET, token: 'a'.repeat(22), keyAuthorization: `${'a'.repeat(22)}.${THUMBPRINT}` },
  { ...SET, token: '-_'.repeat(64), keyAuthorization: `${'-_'.repeat(64)}.${THUMBPRINT}` },
  { ...SET, id: Number.MAX_SAFE_INTEGER },
  RESULT,
  { ...RESULT, ok: false, error: 'x' },
  { ...RESULT, ok: false, error: 'x'.repeat(200) },
];

test('valid acmeChallenge and acmeChallengeResult messages are accepted as a copy holding the same fields', () => {
  for (const message of VALID) {
    const parsed = parseMessage(JSON.parse(JSON.stringify(message)));
    assert.ok(parsed.ok, `${JSON.stringify(message)}: ${parsed.ok ? '' : parsed.error}`);
    assert.deepEqual(parsed.value, message);
    assert.notEqual(parsed.value, message);
  }
});

/** [message, the error must match]: each has exactly one thing wrong. */
const WRONG: [message: Record<string, unknown>, error: RegExp][] = [
  [{ ...SET, op: 'delete' }, /^acmeChallenge\.op must be one of set, unset, not "delete"$/],
  [{ ...SET, op: undefined }, /^acmeChallenge\.op is missing$/],
  [{ ...SET, id: 0 }, /^acmeChallenge\.id must be an integer from 1 to/],
  [{ ...SET, id: '1' }, /^acmeChallenge\.id must be an integer/],
  [{ ...SET, seq: undefined }, /^acmeChallenge\.seq is missing$/],
  [{ ...SET, hostname: 'Home.example.com' }, /^acmeChallenge\.hostname must be a lower-case DNS name such as home\.example\.com, not "Home\.example\.com"$/],
  [{ ...SET, hostname: 'localhost' }, /^acmeChallenge\.hostname must be a lower-case DNS name/], // one label: no CA signs it
  [{ ...SET, hostname: '*.example.com' }, /^acmeChallenge\.hostname must be/],
  [{ ...SET, hostname: '203.0.113.7' }, /^acmeChallenge\.hostname must be/],
  [{ ...SET, hostname: '::1' }, /^acmeChallenge\.hostname must be/],
  [{ ...SET, hostname: 'home.example.com.' }, /^acmeChallenge\.hostname must be/],
  [{ ...SET, hostname: 'home..example.com' }, /^acmeChallenge\.hostname must be/],
  [{ ...SET, hostname: '-home.example.com' }, /^acmeChallenge\.hostname must be/],
  [{ ...SET, hostname: `${'a'.repeat(64)}.com` }, /^acmeChallenge\.hostname must be/],
  [{ ...SET, hostname: `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(62)}` }, /^acmeChallenge\.hostname must be/], // 254
  [{ ...SET, hostname: 'home.example.com\n' }, /^acmeChallenge\.hostname must be/],
  [{ ...SET, hostname: 'home.example.com:80' }, /^acmeChallenge\.hostname must be/],
  [{ ...SET, hostname: 42 }, /^acmeChallenge\.hostname must be .*, not 42$/],
  [{ ...SET, token: 'a'.repeat(21) }, /^acmeChallenge\.token must be an ACME token: 22 to 128 base64url characters/],
  [{ ...SET, token: 'a'.repeat(129) }, /^acmeChallenge\.token must be an ACME token/],
  [{ ...SET, token: `${TOKEN.slice(1)}=` }, /^acmeChallenge\.token must be an ACME token/],
  [{ ...SET, token: `${TOKEN.slice(1)}+` }, /^acmeChallenge\.token must be an ACME token/],
  [{ ...SET, token: `../${TOKEN}` }, /^acmeChallenge\.token must be an ACME token/],
  [{ ...SET, keyAuthorization: TOKEN }, /^acmeChallenge\.keyAuthorization must be an ACME key authorization/],
  [{ ...SET, keyAuthorization: `${TOKEN}.${THUMBPRINT}x` }, /^acmeChallenge\.keyAuthorization must be an ACME key authorization/],
  [{ ...SET, keyAuthorization: `${TOKEN}.${THUMBPRINT.slice(1)}` }, /^acmeChallenge\.keyAuthorization must be/],
  [{ ...SET, keyAuthorization: `${TOKEN}.${THUMBPRINT}\n` }, /^acmeChallenge\.keyAuthorization must be/],
  [{ ...SET, keyAuthorization: `${'b'.repeat(43)}.${THUMBPRINT}` }, /^acmeChallenge: keyAuthorization must begin with the token and "\."$/],
  [{ ...SET, keyAuthorization: undefined }, /^acmeChallenge: op "set" needs keyAuthorization$/],
  [{ ...UNSET, keyAuthorization: KEY_AUTH }, /^acmeChallenge: op "unset" takes no keyAuthorization$/],
  [{ ...SET, extra: 1 }, /^acmeChallenge has unknown field "extra"; its fields are: type, seq, mac, id, op, hostname, token, keyAuthorization$/],
  [{ ...RESULT, ok: 'true' }, /^acmeChallengeResult\.ok must be true or false, not "true"$/],
  [{ ...RESULT, ok: undefined }, /^acmeChallengeResult\.ok is missing$/],
  [{ ...RESULT, ok: false }, /^acmeChallengeResult: error comes with ok: false, and only then$/],
  [{ ...RESULT, error: 'why' }, /^acmeChallengeResult: error comes with ok: false, and only then$/],
  [{ ...RESULT, ok: false, error: '' }, /^acmeChallengeResult\.error must be a string of 1 to 200 characters/],
  [{ ...RESULT, ok: false, error: 'x'.repeat(201) }, /^acmeChallengeResult\.error must be a string of 1 to 200 characters/],
  [{ ...RESULT, id: -1 }, /^acmeChallengeResult\.id must be an integer/],
  [{ ...RESULT, status: 200 }, /^acmeChallengeResult has unknown field "status"/],
];

test('each wrong acme field is refused with an error naming it', () => {
  for (const [message, error] of WRONG) {
    const parsed = parseMessage(JSON.parse(JSON.stringify(message)));
    assert.equal(parsed.ok, false, `accepted: ${JSON.stringify(message)}`);
    if (!parsed.ok) assert.match(parsed.error, error, JSON.stringify(message));
  }
});

test('acmeChallenge is sealed by the agent only, acmeChallengeResult by the server only', () => {
  const key = sessionKey('correct-horse-battery-staple', 'K9wHMIcUmXgFEHzn0PL4hw', 'AAAAAAAAAAAAAAAAAAAAAA');
  const wire = (sealed: object): ReturnType<typeof parseMessage> => parseMessage(JSON.parse(JSON.stringify(sealed)));
  const { type: _s, seq: _q, mac: _m, ...setOrder } = SET;
  const cases = [
    { sender: 'agent', receiver: 'server', message: { ...setOrder, type: 'acmeChallenge' as const, op: 'set' as const } },
    { sender: 'server', receiver: 'agent', message: { type: 'acmeChallengeResult' as const, id: 1, ok: false, error: 'refused' } },
  ] as const;
  for (const { sender, receiver, message } of cases) {
    const parsed = wire(new SealedChannelState(key, sender).seal(message));
    assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
    assert.ok(new SealedChannelState(key, receiver).open(parsed.value).ok, `${message.type} from the ${sender}`);
    // reflected back to its sender: refused by type, before any MAC is looked at
    const reflected = new SealedChannelState(key, sender).open(parsed.value);
    assert.equal(reflected.ok, false);
    if (!reflected.ok) assert.match(reflected.error, new RegExp(`^"${message.type}" is not a sealed message the ${receiver} sends$`));
  }
});
