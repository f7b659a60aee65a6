import { isIP } from 'node:net';
import { err, ok, type Result } from '../common/result.js';
import type { ListenAddress } from '../common/address.js';
import type { ServerAddress } from './agent-types.js';

/**
 * Parses "0.0.0.0:25305", "[::]:25305" or "[2001:db8::1]:443" into host and port. Port 0 ("any free
 * port") is only for listening addresses, where tests and the demo use it.
 */
export function parseHostPort(text: string, { allowPortZero = false } = {}): Result<ListenAddress> {
  const hint = 'write "0.0.0.0:25305", "127.0.0.1:25305" or "[::]:25305"';
  const split = splitHostPort(text, hint, allowPortZero ? 0 : 1);
  if (!split.ok) return split;
  const { host, port, bracketed } = split.value;
  if (isIP(host) === 0) return err(`"${text}": "${host}" is not an IP address; ${hint}`);
  if (bracketed && isIP(host) !== 6) return err(`"${text}": brackets are for IPv6 only; ${hint}`);
  return ok({ host, port });
}

/** "host:port" or "[v6]:port" split apart, with the port range checked; the host is for the caller. */
function splitHostPort(text: string, hint: string, lowestPort: number): Result<{ host: string; port: number; bracketed: boolean }> {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!match) return err(`"${text}" is not host:port; ${hint}`);
  const port = Number(match[3]);
  if (port < lowestPort || port > 65535) return err(`"${text}": port ${port} is outside ${lowestPort}-65535`);
  return ok({ host: (match[1] ?? match[2])!, port, bracketed: match[1] !== undefined });
}

const HOSTNAME = /^(?=.{1,253}$)(\*\.)?([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** A DNS name (optionally "*.suffix") or an IP address, as used in certificates and routes. */
export function isHostnameOrIp(text: string): boolean {
  return isIP(text) !== 0 || HOSTNAME.test(text);
}

/** A server address as typed on a command line, port optional: "rv.example.com" → "rv.example.com:7000", "2001:db8::1" → "[2001:db8::1]:7000". */
export function withDefaultPort(text: string, port: number): string {
  if (isIP(text) === 6) return `[${text}]:${port}`;
  return /:\d+$/.test(text) ? text : `${text}:${port}`;
}

/** Parses "203.0.113.10:7000", "rv.example.com:7000" or "[2001:db8::1]:7000" (a server to connect to). */
export function parseServerAddress(text: string): Result<ServerAddress> {
  const hint = 'write "203.0.113.10:7000" or "rendezvous.example.com:7000"';
  const split = splitHostPort(text, hint, 1);
  if (!split.ok) return split;
  const { host, port, bracketed } = split.value;
  if (bracketed ? isIP(host) !== 6 : isIP(host) === 0 && !HOSTNAME.test(host)) {
    return err(`"${text}": "${host}" is not a host name or IP address; ${hint}`);
  }
  return ok({ host, port });
}
