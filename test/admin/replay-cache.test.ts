import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayCache } from '../../src/admin/replay-cache.js';

const WINDOW_MS = 600_000;

function cache(maxEntries?: number) {
  const clock = { now: Date.parse('2030-01-01T00:00:00Z') };
  return { clock, nonces: new ReplayCache({ windowMs: WINDOW_MS, ...(maxEntries ? { maxEntries } : {}), now: () => clock.now }) };
}

test('a nonce is accepted once and refused again for the whole window, then forgotten', () => {
  const { clock, nonces } = cache();
  assert.deepEqual(nonces.remember('key1', 'n1'), { verdict: 'fresh' });
  assert.deepEqual(nonces.remember('key1', 'n1'), { verdict: 'replay' });
  assert.deepEqual(nonces.remember('key2', 'n1'), { verdict: 'fresh' }, 'keys have their own nonces');
  clock.now += WINDOW_MS;
  assert.deepEqual(nonces.remember('key1', 'n1'), { verdict: 'replay' }, 'still remembered at the last moment of the window');
  clock.now += 1;
  assert.deepEqual(nonces.remember('key1', 'n1'), { verdict: 'fresh' });
  assert.equal(nonces.size, 1, 'expired nonces are pruned as new ones arrive');
});

test('a full cache refuses new nonces, keeps live ones, and takes new ones once the oldest expires', () => {
  const { clock, nonces } = cache(3);
  nonces.remember('k', 'a');
  clock.now += 1000;
  nonces.remember('k', 'b');
  nonces.remember('k', 'c');
  assert.deepEqual(nonces.remember('k', 'd'), { verdict: 'full', retryAfterMs: WINDOW_MS - 1000 });
  assert.deepEqual(nonces.remember('k', 'a'), { verdict: 'replay' }, 'a live nonce is never forgotten to make room');
  clock.now += WINDOW_MS - 1000 + 1;
  assert.deepEqual(nonces.remember('k', 'd'), { verdict: 'fresh' });
  assert.deepEqual(nonces.remember('k', 'b'), { verdict: 'replay' });
  assert.equal(nonces.size, 3);
});

test('memory stays bounded by the request rate over the window', () => {
  const { clock, nonces } = cache();
  for (let i = 0; i < 5000; i++) {
    assert.equal(nonces.remember('k', `n${i}`).verdict, 'fresh');
    clock.now += 1000; // one request a second
  }
  assert.equal(nonces.size, WINDOW_MS / 1000 + 1);
});
