/**
 * STUN over UDP retransmission (RFC 8489 §6.2.1): a request is sent again after RTO, then after twice
 * that, and so on, `maxSends` (Rc) times in all; after the last one the client waits `lastWaitFactor` (Rm)
 * times RTO before giving up. The RFC's defaults (RTO 500 ms, Rc 7, Rm 16) give up after 39.5 s; a NAT
 * check expects some tests to go unanswered (that is how filtering shows), and the RFC lets a client
 * choose Rc and Rm, so the check uses fewer sends and, once it has measured the round trip, a shorter RTO.
 */
export interface RetransmitPolicy {
  rtoMs: number;
  maxSends: number;
  lastWaitFactor: number;
}

/** Before any round trip is known: the RFC's initial RTO of 500 ms; sends at 0, 0.5, 1.5, 3.5 s, gives up at 5.5 s. */
export const FIRST_CONTACT: RetransmitPolicy = { rtoMs: 500, maxSends: 4, lastWaitFactor: 4 };

/** The RTO never goes below this, however short the measured round trip: jitter on a busy uplink. */
export const MIN_RTO_MS = 250;

/**
 * The policy once a round trip of `rttMs` was measured: RFC 6298's first RTO (SRTT + 4 × RTTVAR = 3 × RTT)
 * without its 1 s floor, as RFC 8489 allows; three sends. With a short RTT it gives up after 1.75 s.
 */
export function policyForRtt(rttMs: number): RetransmitPolicy {
  return { rtoMs: Math.max(MIN_RTO_MS, Math.ceil(3 * rttMs)), maxSends: 3, lastWaitFactor: 4 };
}

/** When each send happens and when the client gives up, in ms from the first send. */
export function retransmitTimes(policy: RetransmitPolicy): { sends: number[]; giveUpAt: number } {
  const sends: number[] = [];
  let at = 0;
  for (let i = 0; i < policy.maxSends; i += 1) {
    sends.push(at);
    at += policy.rtoMs * 2 ** i;
  }
  return { sends, giveUpAt: sends[sends.length - 1]! + policy.lastWaitFactor * policy.rtoMs };
}
