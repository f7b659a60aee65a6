import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nextCheck, renewAt, renewalDue, retryDelay } from '../../src/tls/acme/renewal.js';
import { parseRetryAfter } from '../../src/tls/acme/transport.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const T0 = Date.parse('2025-01-01T00:00:00Z');
const at = (ms: number): Date => new Date(T0 + ms);

test('renewal starts once a third of the lifetime remains, whatever the lifetime', () => {
  const cases = [
    { lifetime: 90 * DAY, renew: 60 * DAY }, // Let's Encrypt today: 30 days before
    { lifetime: 6 * DAY, renew: 4 * DAY }, // short-lived certificates: 2 days before, not at once
    { lifetime: 5 * 365 * DAY, renew: (5 * 365 * DAY * 2) / 3 }, // Pebble's long test certificates
  ];
  for (const { lifetime, renew } of cases) {
    const validity = { notBefore: at(0), notAfter: at(lifetime) };
    assert.equal(renewAt(validity).getTime(), T0 + renew);
    assert.equal(renewalDue(validity, at(renew - 1)), false);
    assert.equal(renewalDue(validity, at(renew)), true);
  }
});

test('the next check: the regular interval, or the renewal time when sooner, plus jitter', () => {
  const validity = { notBefore: at(0), notAfter: at(90 * DAY) };
  const cases = [
    { now: 0, random: 0, expected: 12 * HOUR },
    { now: 0, random: 0.5, expected: 12 * HOUR + 30 * 60_000 },
    { now: 60 * DAY - 2 * HOUR, random: 0, expected: 60 * DAY }, // renewal due before the next regular check
    { now: 70 * DAY, random: 0.25, expected: 70 * DAY + 15 * 60_000 }, // already due: at once, plus jitter
  ];
  for (const { now, random, expected } of cases) {
    assert.equal(nextCheck(validity, at(now), () => random).getTime(), T0 + expected, `now +${now / HOUR} h, random ${random}`);
  }
});

test('retries back off from a minute to six hours, and a longer Retry-After wins', () => {
  const half = (): number => 0.5;
  const cases = [
    { failures: 1, retryAfter: 0, expected: 45_000 }, // 1 min ceiling, equal jitter: 30 s + 0.5 × 30 s
    { failures: 2, retryAfter: 0, expected: 90_000 },
    { failures: 4, retryAfter: 0, expected: 360_000 },
    { failures: 20, retryAfter: 0, expected: 4.5 * HOUR }, // capped at 6 h
    { failures: 1, retryAfter: 3 * HOUR, expected: 3 * HOUR }, // a rate limit's Retry-After
  ];
  for (const { failures, retryAfter, expected } of cases) assert.equal(retryDelay(failures, retryAfter, half), expected, `failure ${failures}`);
});

test('Retry-After in seconds or as an HTTP date', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter('Wed, 01 Jan 2025 01:00:00 GMT', now), HOUR);
  assert.equal(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now), 0);
  assert.equal(parseRetryAfter('soon', now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
});
