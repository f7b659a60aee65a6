import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { normalizeClientAddress } from '../common/cidr.js';

/**
 * The true client address of a connection, recorded by the path that accepted it (direct: the socket's
 * peer; relay: the PROXY header of an authenticated work connection). The gate, the logs and the
 * X-Forwarded-For header all read it from here, never from a request header.
 */
const addresses = new WeakMap<object, string>();

export function setClientAddress(connection: Duplex, address: string): void {
  addresses.set(connection, address);
}

/** The recorded address, or the socket's own peer address as a fallback for plain sockets. */
export function clientAddressOf(connection: Duplex | Socket): string {
  return addresses.get(connection) ?? normalizeClientAddress((connection as Socket).remoteAddress ?? '');
}
