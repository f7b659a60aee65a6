import { SocketAddress } from 'node:net';
import { parseAddressInto } from '../common/cidr.js';
import { err, ok, type Result } from '../common/result.js';

/**
 * The address value shared by MAPPED-ADDRESS, XOR-MAPPED-ADDRESS and the RFC 3489/5780 address attributes
 * (RFC 8489 §14.1): a reserved byte, the family (1 IPv4, 2 IPv6), the port, then 4 or 16 address bytes.
 * Pure: no sockets.
 */

/** An address in a STUN attribute; ip as Node prints it ("192.0.2.1", "2001:db8::1"). */
export interface StunAddress {
  ip: string;
  port: number;
}

const FAMILY_IPV4 = 1;
const FAMILY_IPV6 = 2;
const IPV4_VALUE_BYTES = 8;
const IPV6_VALUE_BYTES = 20;

/** Reads the plain address format, or says what is wrong with it. */
export function decodeAddress(value: Buffer): Result<StunAddress> {
  if (value.length !== IPV4_VALUE_BYTES && value.length !== IPV6_VALUE_BYTES) {
    return err(`length ${value.length}, expected ${IPV4_VALUE_BYTES} or ${IPV6_VALUE_BYTES}`);
  }
  const family = value[1];
  if (family !== FAMILY_IPV4 && family !== FAMILY_IPV6) return err(`address family ${family}, expected 1 (IPv4) or 2 (IPv6)`);
  const expected = family === FAMILY_IPV4 ? IPV4_VALUE_BYTES : IPV6_VALUE_BYTES;
  if (value.length !== expected) return err(`length ${value.length} for address family ${family}, expected ${expected}`);
  const address = value.subarray(4);
  return ok({ ip: family === FAMILY_IPV4 ? address.join('.') : formatIpv6(address), port: value.readUInt16BE(2) });
}

/** Sixteen bytes as Node prints an IPv6 address, which a caller compares with socket addresses. */
function formatIpv6(address: Buffer): string {
  const groups = Array.from({ length: 8 }, (_, index) => address.readUInt16BE(index * 2).toString(16));
  // SocketAddress prints through libuv's inet_ntop, so "::ffff:1.2.3.4" comes out exactly as a socket reports it.
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/**
 * Writes the plain address format. An IPv4-mapped IPv6 address ("::ffff:1.2.3.4", what a dual-stack socket
 * reports for an IPv4 peer) is written as the IPv4 address the peer really has. Throws RangeError on an ip
 * or port that is no address: they come from sockets, so that is a caller's bug.
 */
export function encodeAddress({ ip, port }: StunAddress): Buffer {
  const words = new Int32Array(4);
  const family = parseAddressInto(ip, words);
  if (family === 0) throw new RangeError(`STUN address ip ${JSON.stringify(ip)} is not an IP address`);
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new RangeError(`STUN address port ${port} is outside 0..65535`);
  const value = Buffer.alloc(family === 4 ? IPV4_VALUE_BYTES : IPV6_VALUE_BYTES);
  value[1] = family === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
  value.writeUInt16BE(port, 2);
  for (let word = 0; 4 + word * 4 < value.length; word++) value.writeInt32BE(words[word]!, 4 + word * 4);
  return value;
}

/**
 * XOR-MAPPED-ADDRESS (RFC 8489 §14.2) hides the address from NATs that rewrite it in payloads: the port is
 * xor'd with the top 16 bits of the magic cookie, the address with the cookie and (IPv6) the transaction id.
 * `key` is those 16 bytes as they stand in the header (bytes 4..19). XOR undoes itself, so this one copy-and-xor
 * serves both directions; bytes past 20 are left alone so a bad length still reaches decodeAddress's check.
 */
export function xorAddressValue(value: Buffer, key: Uint8Array): Buffer {
  const out = Buffer.from(value);
  for (let index = 2; index < Math.min(out.length, 4); index++) out[index] ^= key[index - 2]!;
  for (let index = 4; index < Math.min(out.length, IPV6_VALUE_BYTES); index++) out[index] ^= key[index - 4]!;
  return out;
}
