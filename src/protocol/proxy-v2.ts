import { createHmac } from 'node:crypto';
import { isIP } from 'node:net';
import { macEquals } from './session.js';

/**
 * PROXY protocol v2 (haproxy's proxy-protocol.txt, section 2.2), the binary header the rendezvous puts in
 * front of a relayed connection so the agent learns the user's real address. Pure: bytes in, values out.
 *
 * homeport adds one custom TLV (type 0xE0, the first of the range the spec leaves to applications): an
 * HMAC-SHA256, keyed with the work connection's key, over every header byte before the TLV (the length
 * field included, so nothing can be appended). The agent accepts a header only with that MAC, on a work
 * connection it dialled and authenticated itself; its public port never reads PROXY headers at all.
 */

export interface Endpoint {
  ip: string;
  port: number;
}

export interface ProxyHeader {
  /** The user's address as the rendezvous saw it. */
  source: Endpoint;
  /** The relay address the user connected to. */
  destination: Endpoint;
}

/** The 12 bytes every v2 header starts with. */
export const PROXY_V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const VERSION_PROXY = 0x21; // version 2, command PROXY
const TCP_OVER_IPV4 = 0x11;
const TCP_OVER_IPV6 = 0x21;
const FIXED_BYTES = 16;
const ADDRESS_BYTES = { 4: 12, 6: 36 } as const;
export const MAC_TLV_TYPE = 0xe0;
const MAC_BYTES = 32;
const MAC_TLV_BYTES = 3 + MAC_BYTES;
/** The longest header homeport accepts: an IPv6 address block and the MAC TLV, with room for a few others. */
export const MAX_PROXY_HEADER_BYTES = 256;

/** The header for `header`, sealed with `key`. IPv4-mapped IPv6 sources are sent as IPv4. */
export function encodeProxyHeader(header: ProxyHeader, key: Buffer): Buffer {
  const source = plainIp(header.source.ip);
  const family = isIP(source) === 6 ? 6 : 4;
  const destination = sameFamilyIp(plainIp(header.destination.ip), family);
  const addressBytes = ADDRESS_BYTES[family];
  const frame = Buffer.alloc(FIXED_BYTES + addressBytes + MAC_TLV_BYTES);
  PROXY_V2_SIGNATURE.copy(frame, 0);
  frame[12] = VERSION_PROXY;
  frame[13] = family === 4 ? TCP_OVER_IPV4 : TCP_OVER_IPV6;
  frame.writeUInt16BE(addressBytes + MAC_TLV_BYTES, 14);
  const ipBytes = family === 4 ? 4 : 16;
  ipToBytes(source, family).copy(frame, FIXED_BYTES);
  ipToBytes(destination, family).copy(frame, FIXED_BYTES + ipBytes);
  frame.writeUInt16BE(header.source.port, FIXED_BYTES + 2 * ipBytes);
  frame.writeUInt16BE(header.destination.port, FIXED_BYTES + 2 * ipBytes + 2);
  const tlvAt = FIXED_BYTES + addressBytes;
  frame[tlvAt] = MAC_TLV_TYPE;
  frame.writeUInt16BE(MAC_BYTES, tlvAt + 1);
  proxyMac(key, frame.subarray(0, tlvAt)).copy(frame, tlvAt + 3);
  return frame;
}

export type ProxyDecode = { state: 'incomplete' } | { state: 'done'; header: ProxyHeader; length: number } | { state: 'invalid'; error: string };

/**
 * Reads a sealed header from the start of `bytes`. 'incomplete' asks for more bytes; 'done' gives the header
 * and how many bytes it took (the rest belongs to the user's stream); 'invalid' means the connection must
 * be closed: a wrong signature, version, command, family or length, a missing or wrong MAC.
 */
export function decodeProxyHeader(bytes: Buffer, key: Buffer): ProxyDecode {
  const signatureBytes = Math.min(bytes.length, PROXY_V2_SIGNATURE.length);
  if (!bytes.subarray(0, signatureBytes).equals(PROXY_V2_SIGNATURE.subarray(0, signatureBytes))) return invalid('not a PROXY v2 signature');
  if (bytes.length < FIXED_BYTES) return { state: 'incomplete' };
  if (bytes[12] !== VERSION_PROXY) return invalid(`version/command byte 0x${bytes[12]!.toString(16)} is not 0x21 (v2, PROXY)`);
  const family = bytes[13] === TCP_OVER_IPV4 ? 4 : bytes[13] === TCP_OVER_IPV6 ? 6 : undefined;
  if (family === undefined) return invalid(`family byte 0x${bytes[13]!.toString(16)} is not TCP over IPv4 or IPv6`);
  const length = FIXED_BYTES + bytes.readUInt16BE(14);
  if (length > MAX_PROXY_HEADER_BYTES) return invalid(`header of ${length} bytes is longer than ${MAX_PROXY_HEADER_BYTES}`);
  if (length < FIXED_BYTES + ADDRESS_BYTES[family] + MAC_TLV_BYTES) return invalid(`header of ${length} bytes is too short for its addresses and MAC`);
  if (bytes.length < length) return { state: 'incomplete' };
  const macAt = findMacTlv(bytes, FIXED_BYTES + ADDRESS_BYTES[family], length);
  if (macAt === undefined) return invalid('the header has no homeport MAC');
  const expected = proxyMac(key, bytes.subarray(0, macAt - 3)).toString('hex');
  if (!macEquals(bytes.subarray(macAt, macAt + MAC_BYTES).toString('hex'), expected)) return invalid('the header MAC is wrong');
  const ipBytes = family === 4 ? 4 : 16;
  const at = FIXED_BYTES;
  return {
    state: 'done',
    length,
    header: {
      source: { ip: bytesToIp(bytes.subarray(at, at + ipBytes)), port: bytes.readUInt16BE(at + 2 * ipBytes) },
      destination: { ip: bytesToIp(bytes.subarray(at + ipBytes, at + 2 * ipBytes)), port: bytes.readUInt16BE(at + 2 * ipBytes + 2) },
    },
  };
}

/** The offset of the MAC value; the MAC TLV must be the last one, so that it covers every other. */
function findMacTlv(bytes: Buffer, from: number, end: number): number | undefined {
  let at = from;
  while (at + 3 <= end) {
    const type = bytes[at]!;
    const length = bytes.readUInt16BE(at + 1);
    if (at + 3 + length > end) return undefined;
    if (type === MAC_TLV_TYPE) return length === MAC_BYTES && at + 3 + length === end ? at + 3 : undefined;
    at += 3 + length;
  }
  return undefined;
}

function proxyMac(key: Buffer, covered: Buffer): Buffer {
  return createHmac('sha256', key).update('homeport/1 proxy\n').update(covered).digest();
}

function invalid(error: string): ProxyDecode {
  return { state: 'invalid', error };
}

function plainIp(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return mapped ? mapped[1]! : ip;
}

/** A destination of the other family than the source is sent as the unspecified address of the source's. */
function sameFamilyIp(ip: string, family: 4 | 6): string {
  if (isIP(ip) === family) return ip;
  return family === 4 ? '0.0.0.0' : '::';
}

function ipToBytes(ip: string, family: 4 | 6): Buffer {
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(ip); // "64:ff9b::192.0.2.1": the last two words as a dotted quad
  if (dotted) {
    const [a = 0, b = 0, c = 0, d = 0] = dotted[2]!.split('.').map(Number);
    ip = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail = ''] = ip.includes('::') ? ip.split('::') : [ip, ''];
  const headWords = head === '' ? [] : head.split(':');
  const tailWords = tail === '' ? [] : tail.split(':');
  const words = [...headWords, ...Array<string>(8 - headWords.length - tailWords.length).fill('0'), ...tailWords];
  const bytes = Buffer.alloc(16);
  words.forEach((word, index) => bytes.writeUInt16BE(parseInt(word, 16), index * 2));
  return bytes;
}

function bytesToIp(bytes: Buffer): string {
  if (bytes.length === 4) return [...bytes].join('.');
  const words: string[] = [];
  for (let at = 0; at < 16; at += 2) words.push(bytes.readUInt16BE(at).toString(16));
  // RFC 5952: the longest run of two or more zero words becomes "::"
  let best = { at: -1, length: 1 };
  for (let at = 0; at < 8;) {
    let end = at;
    while (end < 8 && words[end] === '0') end++;
    if (end - at > best.length) best = { at, length: end - at };
    at = end === at ? at + 1 : end;
  }
  if (best.at < 0) return words.join(':');
  return `${words.slice(0, best.at).join(':')}::${words.slice(best.at + best.length).join(':')}`;
}
