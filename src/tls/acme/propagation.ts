import { Resolver } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from '../../common/duration.js';
import { err, ok, type Result } from '../../common/result.js';
import type { DnsRecord } from './dns-hook.js';

export interface PropagationOptions {
  timeoutMs: number;
  /** "ip:port" servers to ask instead of the zone's authoritative ones. */
  nameservers?: string[];
  /** "ip:port" resolvers that find the zone's NS records; default the system's. */
  resolvers?: string[];
  pollMs?: number;
}

/**
 * Waits until the TXT record is served by every server the CA may ask: the zone's authoritative servers
 * (or `nameservers`). Asking them directly, never a recursive resolver, means no cache can hide a fresh
 * record or keep serving a stale one, and the wait ends as soon as the record is really out.
 */
export async function waitForTxt(record: DnsRecord, options: PropagationOptions): Promise<Result<void>> {
  const deadline = Date.now() + options.timeoutMs;
  const servers = options.nameservers ?? await authoritativeServers(record.name, options.resolvers).catch((error: Error) => error);
  if (servers instanceof Error) return err(`cannot find the authoritative DNS servers of ${record.name}: ${servers.message}`);
  let missing = servers;
  for (;;) {
    missing = await serversWithout(record, missing);
    if (missing.length === 0) return ok(undefined);
    if (Date.now() >= deadline) {
      return err(`the TXT record ${record.name} did not appear at ${missing.join(', ')} within ${formatDuration(options.timeoutMs)}; check that the dns hook sets it ("dig TXT ${record.name} @${hostOf(missing[0]!)}") or raise tls.acme.propagationTimeout`);
    }
    await sleep(Math.min(options.pollMs ?? 2000, Math.max(0, deadline - Date.now())));
  }
}

/** The servers that do not (yet) answer with the value. */
async function serversWithout(record: DnsRecord, servers: string[]): Promise<string[]> {
  const answers = await Promise.all(servers.map((server) => hasValue(server, record)));
  return servers.filter((_server, index) => !answers[index]);
}

async function hasValue(server: string, record: DnsRecord): Promise<boolean> {
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([server]);
  const records = await resolver.resolveTxt(record.name).catch(() => [] as string[][]);
  // a long TXT value arrives split into 255-byte strings
  return records.some((chunks) => chunks.join('') === record.value);
}

/**
 * The addresses of the zone's name servers, found by walking up from `name` to the first name that has
 * NS records (the zone apex). These lookups may go through the system's resolver: NS records change
 * rarely and a cached answer is fine; only the TXT record itself must come from the source.
 */
export async function authoritativeServers(name: string, resolvers?: string[]): Promise<string[]> {
  const labels = name.replace(/\.$/, '').split('.');
  const system = new Resolver({ timeout: 3000, tries: 2 });
  if (resolvers) system.setServers(resolvers);
  for (let index = 0; index < labels.length - 1; index += 1) {
    const zone = labels.slice(index).join('.');
    const hosts = await system.resolveNs(zone).catch(() => [] as string[]);
    if (hosts.length > 0) return addressesOf(system, hosts, zone);
  }
  throw new Error('no NS records found for it or any parent domain');
}

/** IPv4 addresses where there are any: a NAS often has no IPv6 route, and an unreachable server would never confirm. */
async function addressesOf(system: Resolver, hosts: string[], zone: string): Promise<string[]> {
  const collect = async (lookup: (host: string) => Promise<string[]>): Promise<string[]> =>
    (await Promise.allSettled(hosts.map(lookup))).flatMap((result) => (result.status === 'fulfilled' ? result.value : []));
  const v4 = await collect((host) => system.resolve4(host));
  const addresses = v4.length > 0 ? v4 : (await collect((host) => system.resolve6(host))).map((ip) => `[${ip}]`);
  if (addresses.length === 0) throw new Error(`the name servers of ${zone} (${hosts.join(', ')}) have no addresses`);
  return addresses.map((ip) => `${ip}:53`);
}

function hostOf(server: string): string {
  return server.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
}
