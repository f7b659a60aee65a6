import { isIP } from 'node:net';

/** An address to listen on: an IP address without brackets ("0.0.0.0", "::", "127.0.0.1") and a port. */
export interface ListenAddress {
  host: string;
  port: number;
}

/** An address as the rendezvous observed it: the agent's public (NAT-mapped) ip and port. */
export interface PublicAddress {
  ip: string;
  port: number;
}

/** "0.0.0.0" or "::": a listener on every address of the host, which names none of them. */
export function isUnspecifiedIp(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::';
}

/** A host as it stands in a URL or a log line: IPv6 in brackets. */
export function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

export function formatHostPort({ host, port }: { host: string; port: number }): string {
  return `${urlHost(host)}:${port}`;
}

/** An observed public address, "198.51.100.2:41000" or "[2001:db8::1]:41000". */
export function formatAddress({ ip, port }: PublicAddress): string {
  return formatHostPort({ host: ip, port });
}
