import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FIRST_CONTACT, MIN_RTO_MS, policyForRtt, retransmitTimes } from '../../src/nat/retransmit.js';

test('the RFC 8489 defaults give its worked example: sends at 0, 500, 1500, ..., 31500 ms, giving up at 39500', () => {
  assert.deepEqual(retransmitTimes({ rtoMs: 500, maxSends: 7, lastWaitFactor: 16 }), { sends: [0, 500, 1500, 3500, 7500, 15500, 31500], giveUpAt: 39_500 });
});

test('first contact: four sends, gives up at 5.5 s', () => {
  assert.deepEqual(retransmitTimes(FIRST_CONTACT), { sends: [0, 500, 1500, 3500], giveUpAt: 5_500 });
});

test('after a measured round trip: 3 x RTT, never below the floor', () => {
  const rows: Array<[number, number]> = [[1, MIN_RTO_MS], [50, MIN_RTO_MS], [100, 300], [400, 1200]];
  for (const [rtt, rto] of rows) assert.equal(policyForRtt(rtt).rtoMs, rto, `rtt ${rtt}`);
  assert.deepEqual(retransmitTimes(policyForRtt(1)), { sends: [0, 250, 750], giveUpAt: 1_750 });
});
