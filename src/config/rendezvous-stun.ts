import { isIP } from 'node:net';
import { isUnspecifiedIp, type ListenAddress } from '../common/address.js';
import { normalizeClientAddress } from '../common/cidr.js';
import { err, ok, type Result } from '../common/result.js';
import { parseHostPort } from './address.js';
import type { TableReader } from './fields.js';
import { STUN_DEFAULT_LISTEN, type StunSettings } from './rendezvous-types.js';

/** [stun]: `listen` ("off" turns STUN off) and the optional `alternate` for RFC 5780; undefined when off or wrong. */
export function readStun(table: TableReader): StunSettings | undefined {
  table.rejectUnknown(['listen', 'alternate']);
  const listenText = table.string('listen', STUN_DEFAULT_LISTEN) ?? STUN_DEFAULT_LISTEN;
  const alternateText = table.optionalString('alternate');
  if (listenText === 'off') {
    if (alternateText !== undefined) table.problems.add(table.key('alternate'), `needs STUN on; remove it, or set ${table.key('listen')} to this server's first address, e.g. "203.0.113.10:3478"`);
    return undefined;
  }
  const listen = parseHostPort(listenText, { allowPortZero: true });
  if (!listen.ok) {
    table.problems.add(table.key('listen'), `${listen.error}; or "off" to turn STUN off`);
    return undefined;
  }
  if (alternateText === undefined) return { listen: listen.value };
  const alternate = readAlternate(table, alternateText, listen.value);
  return alternate && { listen: listen.value, alternate };
}

/** "203.0.113.11" (port: listen's + 1) or "203.0.113.11:3479", checked against `listen`. */
function readAlternate(table: TableReader, text: string, listen: ListenAddress): ListenAddress | undefined {
  const before = table.problems.count;
  const listenProblem = (message: string): void => table.problems.add(table.key('listen'), message);
  const problem = (message: string): void => table.problems.add(table.key('alternate'), message);
  if (isUnspecifiedIp(listen.host)) listenProblem(`"${listen.host}" is every address, but ${table.key('alternate')} needs this server's first address itself; write it, e.g. "203.0.113.10:${listen.port || 3478}"`);
  if (listen.port === 0) listenProblem(`port 0 cannot go with ${table.key('alternate')}: the other ports are derived from it; write a port such as 3478`);
  const alternate = parseAlternate(text, listen.port);
  if (!alternate.ok) {
    problem(alternate.error);
    return undefined;
  }
  const { host, port } = alternate.value;
  if (isUnspecifiedIp(host)) problem(`"${host}" is every address; write this server's second address, e.g. "203.0.113.11"`);
  else if (isIP(host) !== isIP(listen.host)) problem(`"${host}" is IPv${isIP(host)} but ${table.key('listen')} is IPv${isIP(listen.host)}; write a second address of the same family`);
  else if (normalizeClientAddress(host) === normalizeClientAddress(listen.host)) problem(`"${host}" is ${table.key('listen')}'s address too; write this server's second address`);
  if (port === listen.port) problem(`port ${port} is ${table.key('listen')}'s port too; write another one, or leave it out for listen's port + 1`);
  return table.problems.count === before ? alternate.value : undefined;
}

function parseAlternate(text: string, listenPort: number): Result<ListenAddress> {
  if (isIP(text) === 0) {
    const parsed = parseHostPort(text);
    return parsed.ok ? parsed : err(`"${text}" is neither an IP address nor ip:port; write this server's second address, e.g. "203.0.113.11" or "203.0.113.11:3479"`);
  }
  if (listenPort === 65535) return err(`"${text}" has no port and listen's port + 1 is past 65535; write "ip:port"`);
  return ok({ host: text, port: listenPort + 1 });
}
