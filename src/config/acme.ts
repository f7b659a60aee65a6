import { resolve } from 'node:path';
import { isIP } from 'node:net';
import { isHostnameOrIp, parseHostPort, withDefaultPort } from './address.js';
import { ACME_CHALLENGES, ACME_DIRECTORIES, DEFAULT_PROPAGATION_TIMEOUT_MS, type AcmeConfig } from './agent-types.js';
import type { TableReader } from './fields.js';

const KEYS = ['directory', 'email', 'hostnames', 'challenge', 'dnsHook', 'propagationTimeout', 'nameservers', 'directoryCa'];
const DIRECTORY_NAMES = Object.keys(ACME_DIRECTORIES).map((name) => `"${name}"`).join(', ');

/** [tls.acme], for mode = "acme". Relative paths are taken from the config folder. */
export function readAcme(table: TableReader, baseDir: string): AcmeConfig | undefined {
  table.rejectUnknown(KEYS);
  const directory = readDirectory(table);
  const challenge = table.oneOf('challenge', ACME_CHALLENGES, 'dns-01');
  const hostnames = readHostnames(table, challenge);
  const email = readEmail(table);
  const dnsHook = table.optionalString('dnsHook');
  if (challenge === 'dns-01' && table.table.dnsHook === undefined) {
    table.problems.add(table.key('dnsHook'), 'is missing; dns-01 needs a script that sets the TXT record at your DNS provider (see "Real certificates (ACME)" in the README), or use challenge = "http-01"');
  }
  const propagationTimeoutMs = table.duration('propagationTimeout', DEFAULT_PROPAGATION_TIMEOUT_MS);
  const nameservers = readNameservers(table);
  const directoryCa = table.optionalString('directoryCa');
  if (directory === undefined || challenge === undefined) return undefined;
  return {
    directory,
    hostnames,
    challenge,
    propagationTimeoutMs,
    ...(email !== undefined && { email }),
    ...(dnsHook !== undefined && { dnsHook: resolve(baseDir, dnsHook) }),
    ...(nameservers !== undefined && { nameservers }),
    ...(directoryCa !== undefined && { directoryCa: resolve(baseDir, directoryCa) }),
  };
}

function readDirectory(table: TableReader): string | undefined {
  const value = table.string('directory', 'letsencrypt');
  if (value === undefined) return undefined;
  const named = ACME_DIRECTORIES[value];
  if (named !== undefined) return named;
  if (!URL.canParse(value) || new URL(value).protocol !== 'https:') {
    table.problems.add(table.key('directory'), `"${value}" is neither ${DIRECTORY_NAMES} nor an https:// directory URL`);
    return undefined;
  }
  return value;
}

function readHostnames(table: TableReader, challenge: string | undefined): string[] {
  const hostnames = table.stringArray('hostnames');
  if (table.table.hostnames !== undefined && hostnames.length === 0) {
    table.problems.add(table.key('hostnames'), 'is empty; list the DNS names clients use, e.g. ["home.example.com"]');
  }
  return hostnames.filter((host, index) => {
    const problem = hostnameProblem(host, challenge);
    if (problem !== undefined) table.problems.add(`${table.key('hostnames')}[${index}]`, problem);
    return problem === undefined;
  }).map((host) => host.toLowerCase());
}

function hostnameProblem(host: string, challenge: string | undefined): string | undefined {
  // Let's Encrypt signs DNS names only; an IP in tls.hostnames of a self-signed setup must go
  if (isIP(host) !== 0) return `"${host}" is an IP address; ACME certificates name DNS names only`;
  if (!isHostnameOrIp(host) || !host.includes('.')) return `"${host}" is not a DNS name such as "home.example.com"`;
  if (host.startsWith('*.') && challenge === 'http-01') return `"${host}" is a wildcard, which only dns-01 can prove; set challenge = "dns-01"`;
  return undefined;
}

function readEmail(table: TableReader): string | undefined {
  const email = table.optionalString('email');
  if (email !== undefined && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
    table.problems.add(table.key('email'), `"${email}" is not an e-mail address; the CA writes to it before a certificate expires`);
    return undefined;
  }
  return email;
}

/** "192.0.2.53", "127.0.0.1:8053" or "[2001:db8::53]:53", kept as the "host:port" node:dns takes. */
function readNameservers(table: TableReader): string[] | undefined {
  if (table.table.nameservers === undefined) return undefined;
  const servers = table.stringArray('nameservers');
  if (servers.length === 0) table.problems.add(table.key('nameservers'), 'is empty; remove it to ask the zone\'s authoritative servers');
  return servers.flatMap((text, index) => {
    const parsed = parseHostPort(withDefaultPort(text, 53));
    if (parsed.ok) return [withDefaultPort(parsed.value.host, parsed.value.port)];
    table.problems.add(`${table.key('nameservers')}[${index}]`, `"${text}" is not an IP address with an optional port, e.g. "192.0.2.53" or "127.0.0.1:8053"`);
    return [];
  });
}
