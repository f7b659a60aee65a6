import { isIP } from 'node:net';
import { isAcmeHostname } from '../protocol/messages.js';
import type { TableReader } from './fields.js';
import type { Problems } from './problems.js';
import type { TlsConfig } from './agent-types.js';
import type { RendezvousAgentEntry, RendezvousSettings } from './rendezvous-types.js';

/** Which key listed each name first, and the rendezvous's own names: what one agent's list is checked against. */
export interface AcmeNameClaims {
  /** Lower-cased name → `agent[i].acmeHostnames`. */
  claimed: Map<string, string>;
  /** The rendezvous's [tls] names, lower-cased. */
  own: ReadonlySet<string>;
}

export function acmeNameClaims(tls: TlsConfig | undefined): AcmeNameClaims {
  return { claimed: new Map(), own: new Set((tls?.hostnames ?? []).map((name) => name.toLowerCase())) };
}

/**
 * [[agent]] acmeHostnames, lower-cased; undefined when absent. A name belongs to one agent only and never
 * to the rendezvous itself: whoever may answer a name's HTTP-01 challenge can get a certificate for it.
 */
export function readAcmeHostnames(table: TableReader, claims: AcmeNameClaims): string[] | undefined {
  if (table.table.acmeHostnames === undefined) return undefined;
  const key = table.key('acmeHostnames');
  const names = table.stringArray('acmeHostnames');
  if (Array.isArray(table.table.acmeHostnames) && table.table.acmeHostnames.length === 0) {
    table.problems.add(key, 'is empty; list the names this agent gets certificates for, e.g. ["home.example.com"], or remove it');
  }
  const accepted = names.flatMap((name, index) => {
    const lower = name.toLowerCase();
    const problem = nameProblem(name, lower, key, claims);
    if (problem !== undefined) table.problems.add(`${key}[${index}]`, problem);
    else claims.claimed.set(lower, key);
    return problem === undefined ? [lower] : [];
  });
  return accepted.length > 0 ? accepted : undefined;
}

function nameProblem(name: string, lower: string, key: string, { claimed, own }: AcmeNameClaims): string | undefined {
  if (isIP(name) !== 0) return `"${name}" is an IP address; HTTP-01 through the rendezvous is for DNS names such as "home.example.com"`;
  if (name.startsWith('*.')) return `"${name}" is a wildcard, which only dns-01 can prove; remove it here and use challenge = "dns-01" on the agent`;
  if (!isAcmeHostname(lower)) return `"${name}" is not a DNS name such as "home.example.com"`;
  if (own.has(lower)) return `"${name}" is the rendezvous's own name (tls); an agent must not get certificates for it, remove it here`;
  const first = claimed.get(lower);
  if (first === key) return `"${name}" is listed twice; remove one`;
  if (first !== undefined) return `"${name}" is in ${first} too; a name belongs to one agent, remove it from one of them`;
  return undefined;
}

/** acmeHttp is where every HTTP-01 answer is served: names to answer without it are a mistake to point out. */
export function checkAcmeListener(settings: RendezvousSettings, tls: TlsConfig | undefined, agents: readonly RendezvousAgentEntry[], problems: Problems): void {
  if (settings.acmeHttp !== undefined) return;
  const fix = 'add acmeHttp = "0.0.0.0:80" to [rendezvous] (the CA asks on port 80)';
  if (tls?.mode === 'acme' && tls.acme.challenge === 'http-01') problems.add('rendezvous.acmeHttp', `is missing; tls.acme.challenge = "http-01" is answered there: ${fix}`);
  const withNames = agents.find((agent) => agent.acmeHostnames !== undefined);
  if (withNames) problems.add('rendezvous.acmeHttp', `is missing; agent "${withNames.name}" has acmeHostnames, which are answered there: ${fix}`);
}
