import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { formatAddress, type PublicAddress } from '../common/address.js';
import { adviceFor } from './advice.js';
import { describeUdp, isReply, otherAddressOf, sameAddress, type Answer, type BindingReply, type Observations, type UdpBehaviour } from './behaviour.js';
import { FIRST_CONTACT, policyForRtt, retransmitTimes, type RetransmitPolicy } from './retransmit.js';
import { bindingOverTcp } from './stun-tcp.js';
import { StunUdpSocket, type StunReply } from './stun-udp.js';
import { newTransactionId } from './stun-message.js';

/** What `homeport nat-check` found, as `--json` prints it. */
export interface NatReport {
  server: string;
  udp: Omit<UdpBehaviour, 'external' | 'nat' | 'hairpinning'> & { local: string; external: string | null; nat: boolean | null; hairpinning: boolean | null };
  tcp?: TcpReport;
  advice: string[];
  elapsedMs: number;
}

export type TcpReport = { local: string; mapped: string[]; stable: boolean; preserved: boolean } | { error: string };

export interface NatCheckOptions {
  /** STUN servers by IP, tried in order until one gives a full answer. */
  servers: PublicAddress[];
  /** Also check TCP: connections from one local port to two server addresses. */
  tcp: boolean;
}

/** How long one TCP Binding may take (connect plus answer). */
const TCP_TIMEOUT_MS = 3_000;

/**
 * Runs the RFC 5780 tests against the first server that answers, moving on to the next listed server
 * while the answer is incomplete (no answer, or a server without RFC 5780).
 */
export async function checkNat(options: NatCheckOptions): Promise<NatReport> {
  const started = performance.now();
  let report: NatReport | undefined;
  for (const [index, server] of options.servers.entries()) {
    const second = options.servers[index + 1] ?? options.servers[index - 1];
    report = await checkAgainst(server, options.tcp ? second : undefined, options.tcp);
    if (report.udp.mapping !== 'cannot tell' && report.udp.filtering !== 'cannot tell') break;
  }
  if (report === undefined) throw new Error('no STUN server to check against');
  return { ...report, elapsedMs: Math.round(performance.now() - started) };
}

async function checkAgainst(server: PublicAddress, secondServer: PublicAddress | undefined, tcp: boolean): Promise<NatReport> {
  const family = isIP(server.ip) === 6 ? 6 : 4;
  const [mapping, filtering, hairpin] = await Promise.all([StunUdpSocket.open(family), StunUdpSocket.open(family), StunUdpSocket.open(family)]);
  try {
    const local = { ip: await localAddressTowards(server), port: mapping.port };
    const first = await mapping.request(server, { policy: FIRST_CONTACT });
    const observations: Observations = { server, local, mappingI: asReply(first) };
    const other = observations.mappingI && otherAddressOf(server, observations.mappingI);
    const otherAddress = other?.ok ? other.value : undefined;
    let tcpReport: TcpReport | undefined;
    if (first && observations.mappingI) {
      const policy = policyForRtt(first.rttMs);
      const mappedNow = observations.mappingI.mapped;
      const behindNat = !sameAddress(mappedNow, local);
      await Promise.all([
        behindNat && otherAddress && runMappingTests(mapping, observations, otherAddress, policy),
        otherAddress && runFilteringTests(filtering, observations, policy),
        behindNat && runHairpinTest(hairpin, mapping, mappedNow, policy).then((seen) => { observations.hairpin = seen; }),
        tcp && checkTcp(server, otherAddress ?? secondServer).then((result) => { tcpReport = result; }),
      ]);
    }
    const udp = describeUdp(observations);
    return {
      server: formatAddress(server),
      udp: { ...udp, local: formatAddress(local), external: udp.external ? formatAddress(udp.external) : null, nat: udp.nat ?? null, hairpinning: udp.hairpinning ?? null },
      ...(tcpReport ? { tcp: tcpReport } : {}),
      advice: adviceFor(udp, tcpReport && 'stable' in tcpReport ? tcpReport : undefined),
      elapsedMs: 0,
    };
  } finally {
    for (const socket of [mapping, filtering, hairpin]) socket.close();
  }
}

/** RFC 5780 §4.3: from the mapping socket, to the other IP (test II), then to the other IP and port (test III) if needed. */
async function runMappingTests(socket: StunUdpSocket, observations: Observations, other: PublicAddress, policy: RetransmitPolicy): Promise<void> {
  observations.mappingII = asAnswer(await socket.request({ ip: other.ip, port: observations.server.port }, { policy }));
  if (isReply(observations.mappingII) && !sameAddress(observations.mappingII.mapped, observations.mappingI!.mapped)) {
    observations.mappingIII = asAnswer(await socket.request(other, { policy }));
  }
}

/**
 * RFC 5780 §4.4, from a second socket whose NAT mapping has talked to the primary address only: test I,
 * then tests II (change IP and port) and III (change port) at once, each sent to the primary address.
 */
async function runFilteringTests(socket: StunUdpSocket, observations: Observations, policy: RetransmitPolicy): Promise<void> {
  const { server } = observations;
  observations.filteringI = asAnswer(await socket.request(server, { policy }));
  if (!isReply(observations.filteringI)) return;
  const [both, port] = await Promise.all([
    socket.request(server, { policy, changeRequest: { changeIp: true, changePort: true } }),
    socket.request(server, { policy, changeRequest: { changeIp: false, changePort: true } }),
  ]);
  observations.filteringII = asAnswer(both);
  observations.filteringIII = asAnswer(port);
}

/** RFC 5780 §4.5: a request from a third socket to our own mapped address; hairpinning if it comes back in at the mapping socket. */
async function runHairpinTest(sender: StunUdpSocket, receiver: StunUdpSocket, mapped: PublicAddress, policy: RetransmitPolicy): Promise<boolean> {
  const transactionId = newTransactionId();
  const stop = new AbortController();
  const seen = receiver.expectRequest(transactionId, retransmitTimes(policy).giveUpAt);
  void sender.request(mapped, { policy, transactionId, signal: stop.signal });
  const result = await seen;
  stop.abort();
  return result;
}

/** TCP from one local port to two server addresses: is the mapping the same (stable), and is it the local port (preserved)? */
async function checkTcp(server: PublicAddress, second: PublicAddress | undefined): Promise<TcpReport> {
  if (second === undefined) return { error: 'one server address only: pass a second --stun, or use a server with RFC 5780, to see whether TCP mappings are stable' };
  const first = await bindingOverTcp(server, 0, TCP_TIMEOUT_MS);
  if (!first.ok) return { error: `TCP to ${formatAddress(server)}: ${first.error}` };
  const sockets = [first.value.socket];
  try {
    const local = formatAddress({ ip: first.value.socket.localAddress!, port: first.value.localPort });
    const preserved = first.value.mapped.port === first.value.localPort;
    const next = await bindingOverTcp(second, first.value.localPort, TCP_TIMEOUT_MS);
    if (!next.ok) return { error: `TCP to ${formatAddress(second)} from port ${first.value.localPort}: ${next.error}` };
    sockets.push(next.value.socket);
    return { local, mapped: [first.value.mapped, next.value.mapped].map(formatAddress), stable: sameAddress(first.value.mapped, next.value.mapped), preserved };
  } finally {
    for (const socket of sockets) socket.destroy();
  }
}

/** A reply as the tests see it: an error response is a refusal, a success without a mapped address one too. */
function asAnswer(reply: StunReply | undefined): Answer {
  if (reply === undefined) return undefined;
  const { attributes } = reply.message;
  if (reply.message.class === 'error') return { refused: `${attributes.errorCode?.code ?? 'error'} ${attributes.errorCode?.reason ?? ''}`.trim() };
  const mapped = attributes.xorMappedAddress ?? attributes.mappedAddress;
  if (mapped === undefined) return { refused: 'a success without a mapped address' };
  const other = attributes.otherAddress ?? attributes.changedAddress;
  return { mapped, from: reply.from, ...(other ? { other } : {}) };
}

function asReply(reply: StunReply | undefined): BindingReply | undefined {
  const answer = asAnswer(reply);
  return isReply(answer) ? answer : undefined;
}

/** The local interface address the kernel would send to `server` from (a connected UDP socket sends nothing). */
function localAddressTowards(server: PublicAddress): Promise<string> {
  const socket = createSocket(isIP(server.ip) === 6 ? 'udp6' : 'udp4');
  return new Promise((resolve, reject) => {
    socket.once('error', (error) => {
      socket.close();
      reject(error);
    });
    socket.connect(server.port, server.ip, () => {
      const { address } = socket.address();
      socket.close();
      resolve(address);
    });
  });
}
