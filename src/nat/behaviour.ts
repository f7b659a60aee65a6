import ipaddr from 'ipaddr.js';
import { formatAddress, type PublicAddress } from '../common/address.js';
import { err, ok, type Result } from '../common/result.js';

/**
 * What a NAT does, worked out from STUN Binding answers (RFC 5780 §4.3 mapping, §4.4 filtering; the
 * RFC 3489 class derived from both). Pure: the tests that produce the answers are in nat-check.ts.
 *
 * pystun3's classic mistake is to believe any answer to a CHANGE-REQUEST: a server that ignores it answers
 * from its primary address, and a port-restricted NAT lets that through, so the NAT looks "Full Cone".
 * Here an answer counts only when it came from the address the change asked for, and the server's other
 * address is trusted only when it is there, differs in both IP and port, and is not private unless the
 * server itself is.
 */

export const BEHAVIOURS = ['endpoint-independent', 'address-dependent', 'address-and-port-dependent'] as const;
export type Behaviour = (typeof BEHAVIOURS)[number] | 'cannot tell';
export type ClassicNat =
  | 'Open Internet' | 'Full Cone' | 'Restricted Cone' | 'Restricted Port' | 'Symmetric' | 'Symmetric UDP Firewall' | 'Blocked' | 'cannot tell';

/** One Binding success as the client saw it. */
export interface BindingReply {
  /** XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS from an RFC 3489 server): where the NAT mapped us. */
  mapped: PublicAddress;
  /** Where the datagram actually came from. */
  from: PublicAddress;
  /** OTHER-ADDRESS (or RFC 3489's CHANGED-ADDRESS): the server's second IP and port. */
  other?: PublicAddress;
}

/** A Binding error response: the server would not do what the test asked (e.g. 420 for CHANGE-REQUEST). */
export interface Refusal {
  refused: string;
}

/** A test's outcome: the reply, the server's refusal, or undefined when nothing came within the retransmissions. */
export type Answer = BindingReply | Refusal | undefined;

/** The answers of the tests that ran; a test that did not run is absent. */
export interface Observations {
  /** The server test I was sent to. */
  server: PublicAddress;
  /** The mapping socket's own address (the interface address towards the server and its port). */
  local: PublicAddress;
  /** Mapping test I: to the server's primary address. */
  mappingI: BindingReply | undefined;
  /** Mapping test II: to the other IP, primary port. */
  mappingII?: Answer;
  /** Mapping test III: to the other IP and port. */
  mappingIII?: Answer;
  /** Filtering tests from a second socket: I plain, II change IP and port, III change port. */
  filteringI?: Answer;
  filteringII?: Answer;
  filteringIII?: Answer;
  /** A request sent from a third socket to our own mapped address came back in. */
  hairpin?: boolean;
}

export interface UdpBehaviour {
  external: PublicAddress | undefined;
  nat: boolean | undefined;
  classic: ClassicNat;
  mapping: Behaviour;
  filtering: Behaviour;
  hairpinning: boolean | undefined;
  /** Why anything is "cannot tell", in words. */
  notes: string[];
}

const PRIVATE_RANGES = new Set(['private', 'loopback', 'linkLocal', 'uniqueLocal', 'carrierGradeNat', 'unspecified']);

function isPrivate(ip: string): boolean {
  return !ipaddr.isValid(ip) || PRIVATE_RANGES.has(ipaddr.process(ip).range());
}

export function sameAddress(a: PublicAddress | undefined, b: PublicAddress | undefined): boolean {
  return a !== undefined && b !== undefined && a.ip === b.ip && a.port === b.port;
}

/** The server's other address from test I's reply, if it can be used for RFC 5780 tests; else why not. */
export function otherAddressOf(server: PublicAddress, reply: BindingReply): Result<PublicAddress> {
  const other = reply.other;
  if (other === undefined) return err(`${formatAddress(server)} sent no OTHER-ADDRESS: it does not support RFC 5780 (a plain RFC 5389 server)`);
  if (other.ip === server.ip || other.port === server.port) {
    return err(`${formatAddress(server)} gave OTHER-ADDRESS ${formatAddress(other)}, which does not differ in both IP and port`);
  }
  if (isPrivate(other.ip) && !isPrivate(server.ip)) return err(`${formatAddress(server)} gave a private OTHER-ADDRESS ${formatAddress(other)}: it is misconfigured`);
  return ok(other);
}

/** Mapping behaviour (RFC 5780 §4.3): compare the mapped addresses towards the primary, the other IP, and the other IP and port. */
export function classifyMapping(observations: Observations, notes: string[]): Behaviour {
  const { mappingI, mappingII, mappingIII } = observations;
  if (mappingI === undefined) return 'cannot tell';
  if (!isReply(mappingII)) return unanswered(notes, 'mapping test II (to the other IP)', mappingII);
  if (sameAddress(mappingI.mapped, mappingII.mapped)) return 'endpoint-independent';
  if (!isReply(mappingIII)) return unanswered(notes, 'mapping test III (to the other IP and port)', mappingIII);
  return sameAddress(mappingII.mapped, mappingIII.mapped) ? 'address-dependent' : 'address-and-port-dependent';
}

export function isReply(answer: Answer): answer is BindingReply {
  return answer !== undefined && 'mapped' in answer;
}

function unanswered(notes: string[], test: string, answer: Refusal | undefined): 'cannot tell' {
  notes.push(answer === undefined ? `${test} got no answer, though a server that sends OTHER-ADDRESS must answer there` : `${test} was refused: ${answer.refused}`);
  return 'cannot tell';
}

/**
 * Filtering behaviour (RFC 5780 §4.4): does an answer from another IP and port (test II), or from
 * another port only (test III), get through? An answer from anywhere but the asked-for address means the
 * server ignored the CHANGE-REQUEST, and then nothing can be told.
 */
export function classifyFiltering(observations: Observations, other: PublicAddress, notes: string[]): Behaviour {
  const { server, filteringI, filteringII, filteringIII } = observations;
  if (!isReply(filteringI)) return unanswered(notes, 'filtering test I (from a second local port)', filteringI);
  const refusal = [filteringII, filteringIII].find((answer): answer is Refusal => answer !== undefined && !isReply(answer));
  if (refusal) return unanswered(notes, 'a filtering test with CHANGE-REQUEST', refusal);
  const changedBoth = { ip: other.ip, port: other.port };
  const changedPort = { ip: server.ip, port: other.port };
  const wrongSource = [isReply(filteringII) && !sameAddress(filteringII.from, changedBoth) ? filteringII : undefined,
    isReply(filteringIII) && !sameAddress(filteringIII.from, changedPort) ? filteringIII : undefined].find(isReply);
  if (wrongSource) {
    notes.push(`${formatAddress(server)} answered a CHANGE-REQUEST from ${formatAddress(wrongSource.from)}: it ignores CHANGE-REQUEST, so filtering cannot be told`);
    return 'cannot tell';
  }
  if (filteringII) return 'endpoint-independent';
  return filteringIII ? 'address-dependent' : 'address-and-port-dependent';
}

/** The RFC 3489 class (as pystun3 names it) that the RFC 5780 behaviour amounts to. */
export function classicClass(nat: boolean | undefined, mapping: Behaviour, filtering: Behaviour): ClassicNat {
  if (nat === undefined) return 'Blocked';
  if (!nat) {
    if (filtering === 'cannot tell') return 'cannot tell';
    return filtering === 'endpoint-independent' ? 'Open Internet' : 'Symmetric UDP Firewall';
  }
  if (mapping === 'address-dependent' || mapping === 'address-and-port-dependent') return 'Symmetric';
  if (mapping === 'cannot tell' || filtering === 'cannot tell') return 'cannot tell';
  return ({ 'endpoint-independent': 'Full Cone', 'address-dependent': 'Restricted Cone', 'address-and-port-dependent': 'Restricted Port' } as const)[filtering];
}

/** Everything the observations tell about the NAT's UDP behaviour. */
export function describeUdp(observations: Observations): UdpBehaviour {
  const notes: string[] = [];
  const first = observations.mappingI;
  if (first === undefined) {
    notes.push(`no answer from ${formatAddress(observations.server)}: UDP is blocked on the way, or no STUN server runs there`);
    return { external: undefined, nat: undefined, classic: 'Blocked', mapping: 'cannot tell', filtering: 'cannot tell', hairpinning: undefined, notes };
  }
  const nat = !sameAddress(first.mapped, observations.local);
  const other = otherAddressOf(observations.server, first);
  if (!other.ok) notes.push(`${other.error}; mapping and filtering cannot be told: use a server with RFC 5780 (a homeport rendezvous with [stun] alternate, or coturn)`);
  // without NAT there is no mapping to vary: RFC 5780 calls that endpoint-independent
  const mapping = !nat ? 'endpoint-independent' : other.ok ? classifyMapping(observations, notes) : 'cannot tell';
  const filtering = other.ok ? classifyFiltering(observations, other.value, notes) : 'cannot tell';
  return {
    external: first.mapped,
    nat,
    classic: classicClass(nat, mapping, filtering),
    mapping,
    filtering,
    hairpinning: nat ? observations.hairpin : undefined,
    notes,
  };
}
