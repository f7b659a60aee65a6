// Reference STUN peers for the NAT lab: coturn's `turnserver` (RFC 5780: answers CHANGE-REQUEST from its second
// address and port) and Vovida's `stund` (RFC 3489) as servers in hp-wan, and their clients,
// `turnutils_natdiscovery` (RFC 5780 mapping, filtering, hairpinning) and `stun` (the classic RFC 3489 class),
// run in any lab node with their verdicts parsed. Everything runs inside the lab's namespaces only; the lab
// stops the servers at down() (they are lab children) and lab-down.sh kills whatever is left in its namespaces.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from './homeport.js';
import type { Lab, LabChild, LabNode, Tool } from './lab.js';
import { parseEndpoint } from './probe-protocol.js';

/** The programs this file runs, for skipReason(STUN_TOOLS). */
export const STUN_TOOLS: readonly Tool[] = [
  ['turnserver', 'coturn'],
  ['turnutils_natdiscovery', 'coturn'],
  ['stund', 'stun-server'],
  ['stun', 'stun-client'],
  ['ss', 'iproute2'],
];

/** RFC 5780 §4.3/§4.4 behaviours, in nat-check's words. */
export type Behaviour = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent';
/** The RFC 3489 classes, in nat-check's words. */
export type ClassicClass =
  | 'Open Internet'
  | 'Full Cone'
  | 'Restricted Cone'
  | 'Restricted Port'
  | 'Symmetric'
  | 'Symmetric UDP Firewall'
  | 'Blocked';

/**
 * Ports in hp-wan: coturn listens on 3490 and 3491 of both public addresses, stund on 3492 and 3493 (homeport's
 * own STUN server keeps 3478 and 3479).
 */
export const COTURN_PORT = 3490;
export const STUND_PORT = 3492;

const READY_TIMEOUT_MS = 5_000;
/** natdiscovery with -H on a port-restricted cone takes 12.5 s in the lab (three tests time out) */
const CLIENT_TIMEOUT_MS = 40_000;

// ---- servers ---------------------------------------------------------------------------------------------------

/** Both public addresses of hp-wan, each with port and port + 1: the four sockets of an RFC 5780/3489 server. */
function serverSockets(lab: Lab, port: number): string[] {
  const { rendezvous, rendezvousAlt } = lab.addresses;
  return [rendezvous, rendezvousAlt].flatMap((ip) => [`${ip}:${port}`, `${ip}:${port + 1}`]);
}

/**
 * coturn as a STUN-only RFC 5780 server on rendezvous:3490 (UDP and TCP), with its other address
 * rendezvousAlt:3491. Its config, pid file and user database live in a fresh temporary folder: nothing of the
 * system's /etc/turnserver.conf (which sets no-rfc5780) or /var is read or written.
 */
export async function startCoturn(lab: Lab): Promise<LabChild> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-coturn-'));
  const { rendezvous, rendezvousAlt } = lab.addresses;
  const coturn = lab.spawn('wan', [
    'turnserver', '-c', '/dev/null', '-n', '-S', '-z', '--no-cli', '--no-tls', '--no-dtls',
    '--listening-ip', rendezvous, '--listening-ip', rendezvousAlt,
    '-p', String(COTURN_PORT), '--alt-listening-port', String(COTURN_PORT + 1),
    '--log-file', 'stdout', '--pidfile', join(dir, 'turnserver.pid'), '--userdb', join(dir, 'turndb'),
  ], { cwd: dir });
  await waitForListeners(lab, coturn, { udp: serverSockets(lab, COTURN_PORT), tcp: [`${rendezvous}:${COTURN_PORT}`] });
  return coturn;
}

/** Vovida's stund (RFC 3489) on rendezvous:3492, with CHANGED-ADDRESS rendezvousAlt:3493. UDP only. */
export async function startStund(lab: Lab): Promise<LabChild> {
  const { rendezvous, rendezvousAlt } = lab.addresses;
  const stund = lab.spawn('wan', [
    'stund', '-h', rendezvous, '-a', rendezvousAlt, '-p', String(STUND_PORT), '-o', String(STUND_PORT + 1),
  ]);
  await waitForListeners(lab, stund, { udp: serverSockets(lab, STUND_PORT), tcp: [] });
  return stund;
}

export interface Listeners {
  /** "ip:port" that must have a bound UDP socket */
  udp: readonly string[];
  /** "ip:port" that must have a listening TCP socket */
  tcp: readonly string[];
}

/** Waits until every socket is bound in the server's namespace (ss), or fails with the server's output. */
export async function waitForListeners(lab: Lab, server: LabChild, wanted: Listeners, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const missing = await missingListeners(lab, server.node, wanted);
    if (missing.length === 0) return;
    if (!server.running) throw new Error(`the server exited before binding ${missing.join(', ')}:\n${server.output()}`);
    if (Date.now() > deadline) throw new Error(`not bound within ${timeoutMs} ms: ${missing.join(', ')}\n${server.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function missingListeners(lab: Lab, node: LabNode, wanted: Listeners): Promise<string[]> {
  const [udp, tcp] = await Promise.all([boundSockets(lab, node, '-u'), boundSockets(lab, node, '-t')]);
  return [...wanted.udp.filter((socket) => !udp.has(socket)).map((s) => `udp ${s}`),
    ...wanted.tcp.filter((socket) => !tcp.has(socket)).map((s) => `tcp ${s}`)];
}

/** Local "ip:port" of every listening/bound socket of one protocol in node's namespace. */
async function boundSockets(lab: Lab, node: LabNode, protocol: '-u' | '-t'): Promise<Set<string>> {
  const { stdout } = await lab.exec(node, ['ss', '-Hln4', protocol]);
  return new Set(stdout.split('\n').map((line) => line.trim().split(/\s+/)[3]).filter((local): local is string => !!local));
}

// ---- clients ---------------------------------------------------------------------------------------------------

/** What coturn's turnutils_natdiscovery concluded; 'cannot tell' when it printed no verdict for a test. */
export interface Discovery {
  /** false when it saw its own local address as the mapped one ("No NAT!") */
  nat: boolean;
  mapping: Behaviour | 'cannot tell';
  filtering: Behaviour | 'cannot tell';
  /** only when asked for (-H): whether a packet to its own mapped address came back */
  hairpinning?: boolean;
  elapsedMs: number;
  output: string;
}

/**
 * `turnutils_natdiscovery -m -f [-H] -L <node's address> -p PORT IP` in node: RFC 5780 mapping and filtering
 * (and hairpinning) against server "ip:port". -L binds the node's own address, so "No NAT!" can show.
 */
export async function natDiscovery(lab: Lab, node: 'home' | 'remote', server: string, options: { hairpinning?: boolean } = {}): Promise<Discovery> {
  const { host, port } = parseEndpoint(server);
  const args = ['-m', '-f', ...(options.hairpinning ? ['-H'] : []), '-L', lab.addresses[node], '-p', String(port), host];
  const { output, elapsedMs } = await runToEnd(lab, node, ['turnutils_natdiscovery', ...args]);
  return { ...parseNatDiscovery(output, options.hairpinning ?? false), elapsedMs, output };
}

export function parseNatDiscovery(output: string, hairpinTested: boolean): Omit<Discovery, 'elapsedMs' | 'output'> {
  const verdict = (test: 'Mapping' | 'Filtering'): Behaviour | 'cannot tell' => {
    const found = new RegExp(`NAT with (Endpoint Independent|Address Dependent|Address and Port Dependent) ${test}!`).exec(output);
    return found ? (found[1]!.toLowerCase().replaceAll(' ', '-') as Behaviour) : 'cannot tell';
  };
  const hairpinning = /Received a request \(maybe a successful hairpinning\)/.test(output);
  return {
    nat: !/No NAT!/.test(output),
    mapping: verdict('Mapping'),
    filtering: verdict('Filtering'),
    ...(hairpinTested ? { hairpinning } : {}),
  };
}

/** Vovida's words (the "Primary:" line of `stun`) for the RFC 3489 classes. */
const VOVIDA_CLASSES: readonly [prefix: string, classic: ClassicClass][] = [
  ['Open', 'Open Internet'],
  ['Independent Mapping, Independent Filter', 'Full Cone'],
  ['Independent Mapping, Address Dependent Filter', 'Restricted Cone'],
  ['Independent Mapping, Port Dependent Filter', 'Restricted Port'],
  ['Dependent Mapping', 'Symmetric'],
  ['Firewall', 'Symmetric UDP Firewall'],
  ['Blocked', 'Blocked'],
];

export interface ClassicVerdict {
  classic: ClassicClass;
  /** the "Primary: …" line, e.g. "Independent Mapping, Port Dependent Filter, random port, no hairpin" */
  line: string;
  elapsedMs: number;
}

/** `stun IP:PORT` (stun-client, RFC 3489) in node against server "ip:port": the classic class. */
export async function classicStun(lab: Lab, node: LabNode, server: string): Promise<ClassicVerdict> {
  const { output, elapsedMs } = await runToEnd(lab, node, ['stun', server]);
  return { ...parseStunClient(output), elapsedMs };
}

export function parseStunClient(output: string): Omit<ClassicVerdict, 'elapsedMs'> {
  const line = /^Primary: (.*)$/m.exec(output)?.[1]?.trim();
  const known = line === undefined ? undefined : VOVIDA_CLASSES.find(([prefix]) => line.startsWith(prefix));
  if (!line || !known) throw new Error(`stun printed no known class:\n${output}`);
  return { classic: known[1], line };
}

export interface Finished {
  /** stdout and stderr */
  output: string;
  code: number | null;
  elapsedMs: number;
}

/**
 * Runs a client in node to its end, whatever its exit code (stun exits with its verdict); fails when it is
 * still running after timeoutMs (then it is stopped) or was killed.
 */
export async function runToEnd(lab: Lab, node: LabNode, command: readonly string[], timeoutMs = CLIENT_TIMEOUT_MS): Promise<Finished> {
  const started = Date.now();
  const child = lab.spawn(node, command);
  const timer = setTimeout(() => void child.stop(), timeoutMs);
  const status = await child.exited;
  clearTimeout(timer);
  if (status.signal !== null) throw new Error(`${command.join(' ')} was killed (${status.signal}), ${timeoutMs} ms allowed:\n${child.output()}`);
  return { output: child.output(), code: status.code, elapsedMs: Date.now() - started };
}

// ---- nat-check's --json (shape: stun-api.md) -----------------------------------------------------------------

type Verdict = Behaviour | 'cannot tell';

export interface NatCheckReport {
  server: string;
  udp: {
    local: string;
    external: string | null;
    nat: boolean | null;
    classic: ClassicClass | 'cannot tell';
    mapping: Verdict;
    filtering: Verdict;
    hairpinning: boolean | null;
    notes: string[];
  };
  tcp?: { local: string; mapped: string[]; stable: boolean; preserved: boolean } | { error: string };
  advice: string[];
  elapsedMs: number;
}

/** `homeport nat-check --stun SERVER [--tcp] --json` in hp-home; it must exit 0 and print one JSON object. */
export async function natCheck(lab: Lab, server: string, options: { tcp?: boolean } = {}): Promise<NatCheckReport> {
  const args = ['nat-check', '--stun', server, ...(options.tcp ? ['--tcp'] : []), '--json'];
  const { output, code } = await runToEnd(lab, 'home', [process.execPath, CLI, ...args], 60_000);
  assert.equal(code, 0, `homeport ${args.join(' ')} exited ${code}:\n${output}`);
  const json = /^\{$[\s\S]*^\}$/m.exec(output); // pretty-printed: from a line "{" to a line "}"
  assert.ok(json, `homeport ${args.join(' ')} printed no JSON object:\n${output}`);
  return JSON.parse(json[0]) as NatCheckReport;
}
