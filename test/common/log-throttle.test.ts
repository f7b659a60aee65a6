import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LogThrottle } from '../../src/common/log-throttle.js';

test('one line per key per interval, counting what it held back; a full table makes room from expired keys', () => {
  const throttle = new LogThrottle(1_000, 2);
  assert.deepEqual(throttle.pass('a', 0), { first: true, heldBack: 0 });
  assert.equal(throttle.pass('a', 500), undefined);
  assert.equal(throttle.pass('a', 999), undefined);
  assert.deepEqual(throttle.pass('a', 1_000), { first: false, heldBack: 2 });
  assert.deepEqual(throttle.pass('b', 1_100), { first: true, heldBack: 0 });
  assert.equal(throttle.pass('c', 1_200), undefined, 'full, and no key has expired: only counted');
  assert.deepEqual(throttle.pass('c', 2_050), { first: true, heldBack: 0 }, '"a" expired and made room');
  assert.equal(throttle.size, 2);
  throttle.prune(10_000);
  assert.equal(throttle.size, 0);
});
