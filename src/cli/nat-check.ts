import { resolveHost } from '../common/resolve.js';
import { parseServerAddress, withDefaultPort } from '../config/address.js';
import type { ServerAddress } from '../config/agent-types.js';
import { checkNat, type NatReport } from '../nat/nat-check.js';
import { type Command, EXIT, parseFlags, UsageError } from './command.js';

export const STUN_PORT = 3478;

/**
 * Used only when no --stun is given. Servers that support RFC 5780 (OTHER-ADDRESS, CHANGE-REQUEST) come
 * first: the check moves on to the next one only while the answer is incomplete.
 */
export const PUBLIC_STUN_SERVERS = ['stun.stunprotocol.org:3478', 'stun.l.google.com:19302', 'stun.cloudflare.com:3478'];

export const natCheckCommand: Command = {
  name: 'nat-check',
  summary: 'tell what this network\'s NAT allows (RFC 3489 class, RFC 5780 behaviour) and what to do',
  help: `Usage: homeport nat-check [--stun <host[:port]>]... [--tcp] [--json]

Asks a STUN server how the NAT in front of this machine maps and filters UDP (RFC 5780), names the
classic type as pystun3 does (Open Internet, Full Cone, Restricted Cone, Restricted Port, Symmetric,
Symmetric UDP Firewall, Blocked), and says what will work: direct access to the agent's punched port,
UDP hole punching, or the relay. A server without RFC 5780 support gives "cannot tell", never a guess.

Options:
  --stun <host[:port]>  a STUN server (default port ${STUN_PORT}); repeat for fallbacks. Your rendezvous
                        answers STUN, with RFC 5780 when its [stun] alternate is set. Without --stun:
                        ${PUBLIC_STUN_SERVERS.join(', ')}
  --tcp                 also connect from one local port to two server addresses over TCP and tell
                        whether the mapped port is stable and preserved
  --json                print the result as one JSON object
  -h, --help            show this help

Exit codes: 0 the check ran, 1 no server answered, 2 usage error.`,
  async run(argv) {
    const { values } = parseFlags(argv, { stun: { type: 'string', multiple: true }, tcp: { type: 'boolean' }, json: { type: 'boolean' } });
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const servers = (values.stun ?? PUBLIC_STUN_SERVERS).map(parseStunServer);
    const report = await checkNat({ servers: await Promise.all(servers.map(resolveServer)), tcp: values.tcp ?? false });
    console.log(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
    return report.udp.classic === 'Blocked' ? EXIT.failure : EXIT.ok;
  },
};

function parseStunServer(text: string): ServerAddress {
  const parsed = parseServerAddress(withDefaultPort(text, STUN_PORT));
  if (!parsed.ok) throw new UsageError(`--stun ${parsed.error}`);
  return parsed.value;
}

async function resolveServer(server: ServerAddress): Promise<{ ip: string; port: number }> {
  try {
    return { ip: await resolveHost(server), port: server.port };
  } catch (error) {
    throw new Error(`cannot resolve STUN server "${server.host}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}

/** The report for a person: facts first, then what to do, then why anything is unknown. */
export function formatReport(report: NatReport): string {
  const { udp, tcp } = report;
  const yesNo = (value: boolean | null | undefined, yes: string, no: string): string => (value === undefined || value === null ? 'cannot tell' : value ? yes : no);
  const lines = [
    `NAT check against ${report.server} (${(report.elapsedMs / 1000).toFixed(1)} s)`,
    `  UDP  ${udp.local} → ${udp.external ?? 'no answer'}`,
    `       NAT type     ${udp.classic}${udp.nat === false ? ' (no NAT)' : ''}`,
    `       mapping      ${udp.mapping}`,
    `       filtering    ${udp.filtering}`,
    `       hairpinning  ${udp.nat === false ? 'not needed (no NAT)' : yesNo(udp.hairpinning, 'yes', 'no')}`,
  ];
  if (tcp) {
    lines.push('error' in tcp ? `  TCP  ${tcp.error}`
      : `  TCP  ${tcp.local} → ${tcp.mapped.join(', ')}: ${tcp.stable ? 'stable' : 'a new mapping per destination'}, port ${tcp.preserved ? 'preserved' : 'not preserved'}`);
  }
  lines.push('', 'What this means:', ...report.advice.map((line) => `  - ${line}`));
  if (udp.notes.length > 0) lines.push('', 'Notes:', ...udp.notes.map((line) => `  - ${line}`));
  return lines.join('\n');
}
