import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { err, ok, type Result } from '../common/result.js';
import {
  ATTRIBUTE_CODECS,
  attributeBytes,
  describeAttribute,
  encodeAttributes,
  FINGERPRINT,
  MESSAGE_INTEGRITY,
  MESSAGE_INTEGRITY_SHA256,
  padded,
  type StunAttributes,
} from './stun-attributes.js';

/**
 * STUN messages (RFC 8489, RFC 5389; the RFC 3489/5780 address attributes for NAT behaviour discovery).
 * Pure: no sockets. decodeStun reports every problem as a value and never throws, because it reads
 * whatever arrives on a public UDP port.
 */

export type { StunAddress } from './stun-address.js';
export type { ChangeRequest, StunAttributes, StunErrorCode } from './stun-attributes.js';

export const STUN_MAGIC_COOKIE = 0x2112a442;
export const STUN_HEADER_BYTES = 20;
/** The only method homeport uses. */
export const BINDING = 0x0001;

export type StunClass = 'request' | 'indication' | 'success' | 'error';
export interface StunMessage {
  /** 12 bits */
  method: number;
  class: StunClass;
  /** 12 bytes: RFC 3489's 16-byte ids (no magic cookie) are not supported, such a message is 'bad-cookie' */
  transactionId: Buffer;
  attributes: StunAttributes;
  /** decode only: FINGERPRINT was present (and it was valid, else decode fails) */
  fingerprint?: boolean;
}
export type StunErrorKind = 'too-short' | 'not-stun' | 'bad-length' | 'bad-cookie' | 'bad-attribute' | 'unknown-required' | 'bad-fingerprint';
export interface StunDecodeError {
  kind: StunErrorKind;
  /** one line, says what was wrong */
  message: string;
  /** present once the 20-byte header was valid, so a server can still answer 400/420 to a request */
  header?: { method: number; class: StunClass; transactionId: Buffer };
  /** 'unknown-required': the comprehension-required attribute types not understood, for a 420's UNKNOWN-ATTRIBUTES */
  unknown?: number[];
}
export type StunDecodeResult = { ok: true; value: StunMessage } | { ok: false; error: StunDecodeError };

/** FINGERPRINT is the CRC-32 xor "STUN", so a CRC-32 trailer of another protocol does not pass for it. */
const FINGERPRINT_XOR = 0x5354554e;
/** Below this an attribute is comprehension-required: a receiver that does not know it must reject the message. */
const FIRST_OPTIONAL_TYPE = 0x8000;
/** Index = the class bits C1C0. */
const CLASSES: readonly StunClass[] = ['request', 'indication', 'success', 'error'];

const hex32 = (value: number): string => `0x${value.toString(16).padStart(8, '0')}`;

/** The 14-bit type interleaves the class into the method (RFC 8489 §5): M11..M7 C1 M6..M4 C0 M3..M0. */
function messageType(method: number, messageClass: StunClass): number {
  const bits = CLASSES.indexOf(messageClass);
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) | ((bits & 1) << 4) | ((bits & 2) << 7);
}

function splitMessageType(type: number): { method: number; class: StunClass } {
  const method = (type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2);
  return { method, class: CLASSES[((type >> 4) & 1) | ((type >> 7) & 2)]! };
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** What makes 20 bytes no STUN header; shared by decodeStun and the TCP framing so both agree. */
function headerProblem(bytes: Buffer): { kind: StunErrorKind; message: string } | undefined {
  // RFC 7983 demultiplexing: STUN starts with 0b00; DTLS, RTP and TURN channel data do not.
  if ((bytes[0]! & 0xc0) !== 0) return { kind: 'not-stun', message: `first byte 0x${bytes[0]!.toString(16)} has a top bit set: not STUN` };
  const cookie = bytes.readUInt32BE(4);
  if (cookie !== STUN_MAGIC_COOKIE) return { kind: 'bad-cookie', message: `magic cookie ${hex32(cookie)}, expected ${hex32(STUN_MAGIC_COOKIE)}` };
  const length = bytes.readUInt16BE(2);
  if (length % 4 !== 0) return { kind: 'bad-length', message: `header length ${length} is not a multiple of 4` };
  return undefined;
}

/** TCP framing: 20 + body length announced by a STUN header, or undefined when these bytes are no STUN header. */
export function stunFrameLength(header: Uint8Array): number | undefined {
  if (header.length < STUN_HEADER_BYTES) return undefined;
  const bytes = asBuffer(header);
  return headerProblem(bytes) ? undefined : STUN_HEADER_BYTES + bytes.readUInt16BE(2);
}

/** 12 random bytes: RFC 8489 wants them unpredictable, so an off-path attacker cannot forge a response. */
export function newTransactionId(): Buffer {
  return randomBytes(12);
}

/**
 * Encodes with zero padding; `fingerprint: true` appends FINGERPRINT. Throws RangeError on what no valid
 * message holds (method over 12 bits, transaction id not 12 bytes, bad address, text past its limit): homeport
 * builds these itself, so that is a caller's bug, as with encodeFrame.
 */
export function encodeStun(message: Omit<StunMessage, 'fingerprint'>, options: { fingerprint?: boolean } = {}): Buffer {
  const { method, transactionId } = message;
  if (!Number.isInteger(method) || method < 0 || method > 0xfff) throw new RangeError(`STUN method ${method} is outside 0..0xfff`);
  if (transactionId.length !== 12) throw new RangeError(`STUN transaction id of ${transactionId.length} bytes, expected 12`);
  const header = Buffer.alloc(STUN_HEADER_BYTES);
  header.writeUInt16BE(messageType(method, message.class), 0);
  header.writeUInt32BE(STUN_MAGIC_COOKIE, 4);
  header.set(transactionId, 8);
  const parts = [header, ...encodeAttributes(message.attributes, header.subarray(4))];
  if (options.fingerprint) parts.push(attributeBytes(FINGERPRINT, Buffer.alloc(4)));
  const packet = Buffer.concat(parts);
  if (packet.length - STUN_HEADER_BYTES > 0xffff) throw new RangeError(`STUN body of ${packet.length - STUN_HEADER_BYTES} bytes exceeds 65535`);
  // the length is final before the CRC is taken: it counts FINGERPRINT itself
  packet.writeUInt16BE(packet.length - STUN_HEADER_BYTES, 2);
  if (options.fingerprint) packet.writeUInt32BE((crc32(packet.subarray(0, packet.length - 8)) ^ FINGERPRINT_XOR) >>> 0, packet.length - 4);
  return packet;
}

type Header = NonNullable<StunDecodeError['header']>;
type Failure = Omit<StunDecodeError, 'header'>;

/** Never throws, whatever the bytes. */
export function decodeStun(packet: Uint8Array): StunDecodeResult {
  if (packet.length < STUN_HEADER_BYTES) {
    return { ok: false, error: { kind: 'too-short', message: `${packet.length} bytes, shorter than the ${STUN_HEADER_BYTES}-byte header` } };
  }
  const bytes = asBuffer(packet);
  const problem = headerProblem(bytes);
  if (problem) return { ok: false, error: problem };
  // a copy, not a view: the caller may reuse the packet's buffer
  const header: Header = { ...splitMessageType(bytes.readUInt16BE(0)), transactionId: Buffer.from(bytes.subarray(8, STUN_HEADER_BYTES)) };
  const body = decodeBody(bytes);
  if (!body.ok) return { ok: false, error: { ...body.error, header } };
  return { ok: true, value: { ...header, ...body.value } };
}

/** One attribute as it stands in the message. */
interface RawAttribute {
  type: number;
  value: Buffer;
  /** offset of its type field */
  start: number;
}

type BodyResult = { ok: true; value: { attributes: StunAttributes; fingerprint: boolean } } | { ok: false; error: Failure };

const failure = (kind: StunErrorKind, message: string, unknown?: number[]): { ok: false; error: Failure } => ({
  ok: false,
  error: unknown ? { kind, message, unknown } : { kind, message },
});

/** Checks the framing, then FINGERPRINT (a packet that fails it is no STUN to trust), then reads the values. */
function decodeBody(bytes: Buffer): BodyResult {
  const length = bytes.readUInt16BE(2);
  if (length !== bytes.length - STUN_HEADER_BYTES) {
    return failure('bad-length', `header length ${length}, but ${bytes.length - STUN_HEADER_BYTES} bytes follow the header`);
  }
  const split = splitAttributes(bytes);
  if (!split.ok) return failure('bad-attribute', split.error);
  const fingerprint = checkFingerprint(bytes, split.value);
  if (!fingerprint.ok) return { ok: false, error: fingerprint.error };
  const read = readAttributes(split.value, bytes.subarray(4, STUN_HEADER_BYTES));
  if (!read.ok) return read;
  return { ok: true, value: { attributes: read.value, fingerprint: fingerprint.value } };
}

/** Cuts the body into type-length-value attributes; the padding after a value may hold anything (RFC 5769 uses spaces). */
function splitAttributes(bytes: Buffer): Result<RawAttribute[]> {
  const attributes: RawAttribute[] = [];
  // the body length is a multiple of 4, so each attribute's 4-byte type and length fit
  for (let start = STUN_HEADER_BYTES; start < bytes.length; ) {
    const type = bytes.readUInt16BE(start);
    const length = bytes.readUInt16BE(start + 2);
    const left = bytes.length - start - 4;
    if (length > left) return err(`${describeAttribute(type)}: length ${length} runs past the end of the message (${left} bytes left)`);
    attributes.push({ type, value: bytes.subarray(start + 4, start + 4 + length), start });
    start += 4 + padded(length);
  }
  return ok(attributes);
}

/** Whether a valid FINGERPRINT ends the message: its CRC-32 covers everything before it, header length included. */
function checkFingerprint(bytes: Buffer, attributes: RawAttribute[]): { ok: true; value: boolean } | { ok: false; error: Failure } {
  const index = attributes.findIndex(({ type }) => type === FINGERPRINT);
  if (index < 0) return { ok: true, value: false };
  if (index !== attributes.length - 1) return failure('bad-fingerprint', `${describeAttribute(FINGERPRINT)} is not the last attribute`);
  const { value, start } = attributes[index]!;
  if (value.length !== 4) return failure('bad-attribute', `${describeAttribute(FINGERPRINT)}: length ${value.length}, expected 4`);
  const expected = (crc32(bytes.subarray(0, start)) ^ FINGERPRINT_XOR) >>> 0;
  const found = value.readUInt32BE(0);
  if (found !== expected) return failure('bad-fingerprint', `${describeAttribute(FINGERPRINT)} ${hex32(found)}, but the message gives ${hex32(expected)}`);
  return { ok: true, value: true };
}

/**
 * Interprets the first occurrence of each known type (RFC 8489 §14: later ones need not be processed) and
 * collects the unknown comprehension-required types for a 420. Everything after MESSAGE-INTEGRITY(-SHA256)
 * but FINGERPRINT is ignored, as RFC 8489 §14.5 demands: it is not covered by the integrity check.
 */
function readAttributes(raw: RawAttribute[], key: Buffer): { ok: true; value: StunAttributes } | { ok: false; error: Failure } {
  const attributes: StunAttributes = {};
  const seen = new Set<number>();
  const unknown: number[] = [];
  for (const { type, value } of raw) {
    if (seen.has(MESSAGE_INTEGRITY) || seen.has(MESSAGE_INTEGRITY_SHA256)) break;
    const codec = ATTRIBUTE_CODECS.get(type);
    if (!codec) {
      if (type < FIRST_OPTIONAL_TYPE && !unknown.includes(type)) unknown.push(type);
    } else if (codec.decode && !seen.has(type)) {
      const read = codec.decode(value, key);
      if (!read.ok) return failure('bad-attribute', `${describeAttribute(type)}: ${read.error}`);
      Object.assign(attributes, read.value);
    }
    seen.add(type);
  }
  if (unknown.length > 0) {
    return failure('unknown-required', `unknown comprehension-required ${unknown.map(describeAttribute).join(', ')}`, unknown);
  }
  return { ok: true, value: attributes };
}
