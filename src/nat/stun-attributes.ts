import { err, ok, type Result } from '../common/result.js';
import { decodeAddress, encodeAddress, xorAddressValue, type StunAddress } from './stun-address.js';

/**
 * The STUN attribute values homeport reads and writes, one codec per type, and the types it knows but leaves
 * uninterpreted. The message framing around them (type, length, padding, FINGERPRINT) is stun-message.ts.
 */

export interface ChangeRequest {
  changeIp: boolean;
  changePort: boolean;
}
/** code 300..699 */
export interface StunErrorCode {
  code: number;
  reason: string;
}
export interface StunAttributes {
  mappedAddress?: StunAddress; // 0x0001 MAPPED-ADDRESS
  sourceAddress?: StunAddress; // 0x0004 SOURCE-ADDRESS (RFC 3489)
  changedAddress?: StunAddress; // 0x0005 CHANGED-ADDRESS (RFC 3489)
  changeRequest?: ChangeRequest; // 0x0003 CHANGE-REQUEST
  username?: string; // 0x0006 USERNAME (homeport only reads it, in the RFC 5769 vectors; encodeStun writes it when given)
  errorCode?: StunErrorCode; // 0x0009 ERROR-CODE
  unknownAttributes?: number[]; // 0x000A UNKNOWN-ATTRIBUTES
  xorMappedAddress?: StunAddress; // 0x0020 XOR-MAPPED-ADDRESS
  software?: string; // 0x8022 SOFTWARE (< 128 chars, <= 763 bytes)
  responseOrigin?: StunAddress; // 0x802b RESPONSE-ORIGIN
  otherAddress?: StunAddress; // 0x802c OTHER-ADDRESS
}

export const MESSAGE_INTEGRITY = 0x0008;
export const MESSAGE_INTEGRITY_SHA256 = 0x001c;
export const FINGERPRINT = 0x8028;

type AddressField = 'mappedAddress' | 'sourceAddress' | 'changedAddress' | 'xorMappedAddress' | 'responseOrigin' | 'otherAddress';
type TextField = 'username' | 'software';

/** How one attribute type is named, read and written. */
export interface AttributeCodec {
  name: string;
  /** Reads a value into the attributes it sets; absent for types known but not interpreted (skipped without error). */
  decode?: (value: Buffer, key: Buffer) => Result<StunAttributes>;
  /** The value to send, when the attributes carry this one. `key` is header bytes 4..19 (cookie, transaction id). */
  encode?: (attributes: StunAttributes, key: Buffer) => Buffer | undefined;
}

function plainAddress(name: string, field: AddressField): AttributeCodec {
  return {
    name,
    decode: (value) => addressInto(field, decodeAddress(value)),
    encode: (attributes) => attributes[field] && encodeAddress(attributes[field]),
  };
}

function xorAddress(name: string, field: AddressField): AttributeCodec {
  return {
    name,
    decode: (value, key) => addressInto(field, decodeAddress(xorAddressValue(value, key))),
    encode: (attributes, key) => attributes[field] && xorAddressValue(encodeAddress(attributes[field]), key),
  };
}

function addressInto(field: AddressField, address: Result<StunAddress>): Result<StunAttributes> {
  if (!address.ok) return address;
  const attributes: StunAttributes = {};
  attributes[field] = address.value;
  return ok(attributes);
}

/**
 * UTF-8 text. Reading is lenient (bad UTF-8 becomes U+FFFD, no length limit): SOFTWARE and USERNAME are
 * informational to homeport, and a peer's odd server name must not cost the mapped address beside it.
 */
function text(name: string, field: TextField, maxBytes: number, maxChars = Infinity): AttributeCodec {
  return {
    name,
    decode: (value) => {
      const attributes: StunAttributes = {};
      attributes[field] = value.toString('utf8');
      return ok(attributes);
    },
    encode: (attributes) => {
      const value = attributes[field];
      return value === undefined ? undefined : textBytes(name, value, maxBytes, maxChars);
    },
  };
}

/** Throws RangeError past the RFC's limits: what homeport sends is its own, so that is a caller's bug. */
function textBytes(what: string, value: string, maxBytes: number, maxChars = Infinity): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const chars = [...value].length;
  if (bytes.length > maxBytes || chars > maxChars) {
    throw new RangeError(`${what} of ${chars} characters, ${bytes.length} bytes is longer than ${maxChars === Infinity ? '' : `${maxChars} characters or `}${maxBytes} bytes`);
  }
  return bytes;
}

const changeRequest: AttributeCodec = {
  name: 'CHANGE-REQUEST',
  decode: (value) => {
    if (value.length !== 4) return err(`length ${value.length}, expected 4`);
    return ok({ changeRequest: { changeIp: (value[3]! & 0x04) !== 0, changePort: (value[3]! & 0x02) !== 0 } });
  },
  encode: ({ changeRequest: change }) => change && Buffer.from([0, 0, 0, (change.changeIp ? 0x04 : 0) | (change.changePort ? 0x02 : 0)]),
};

/** The code is split into a class (hundreds, 3..6) and a number (0..99) in the last two of four bytes, then the reason. */
const errorCode: AttributeCodec = {
  name: 'ERROR-CODE',
  decode: (value) => {
    if (value.length < 4) return err(`length ${value.length}, expected at least 4`);
    const [errorClass, number] = [value[2]! & 0x07, value[3]!];
    if (errorClass < 3 || errorClass > 6) return err(`class ${errorClass}, expected 3..6`);
    if (number > 99) return err(`number ${number}, expected 0..99`);
    return ok({ errorCode: { code: errorClass * 100 + number, reason: value.toString('utf8', 4) } });
  },
  encode: ({ errorCode: error }) => {
    if (!error) return undefined;
    if (!Number.isInteger(error.code) || error.code < 300 || error.code > 699) throw new RangeError(`ERROR-CODE ${error.code} is outside 300..699`);
    const reason = textBytes('ERROR-CODE reason', error.reason, 763, 127);
    return Buffer.concat([Buffer.from([0, 0, Math.floor(error.code / 100), error.code % 100]), reason]);
  },
};

const unknownAttributes: AttributeCodec = {
  name: 'UNKNOWN-ATTRIBUTES',
  decode: (value) => {
    if (value.length % 2 !== 0) return err(`length ${value.length}, expected a multiple of 2`);
    return ok({ unknownAttributes: Array.from({ length: value.length / 2 }, (_, index) => value.readUInt16BE(index * 2)) });
  },
  encode: ({ unknownAttributes: types }) => {
    if (!types) return undefined;
    const value = Buffer.alloc(types.length * 2);
    types.forEach((type, index) => value.writeUInt16BE(type, index * 2));
    return value;
  },
};

/** Every type the codec knows, in the order encodeStun writes them. Unknown types < 0x8000 fail as 'unknown-required'. */
export const ATTRIBUTE_CODECS = new Map<number, AttributeCodec>([
  [0x0001, plainAddress('MAPPED-ADDRESS', 'mappedAddress')],
  [0x0003, changeRequest],
  [0x0004, plainAddress('SOURCE-ADDRESS', 'sourceAddress')],
  [0x0005, plainAddress('CHANGED-ADDRESS', 'changedAddress')],
  [0x0006, text('USERNAME', 'username', 512)],
  [MESSAGE_INTEGRITY, { name: 'MESSAGE-INTEGRITY' }],
  [0x0009, errorCode],
  [0x000a, unknownAttributes],
  [0x0014, { name: 'REALM' }],
  [0x0015, { name: 'NONCE' }],
  [MESSAGE_INTEGRITY_SHA256, { name: 'MESSAGE-INTEGRITY-SHA256' }],
  [0x001d, { name: 'PASSWORD-ALGORITHM' }],
  [0x001e, { name: 'USERHASH' }],
  [0x0020, xorAddress('XOR-MAPPED-ADDRESS', 'xorMappedAddress')],
  [0x0024, { name: 'PRIORITY' }],
  [0x0025, { name: 'USE-CANDIDATE' }],
  [0x0026, { name: 'PADDING' }],
  [0x0027, { name: 'RESPONSE-PORT' }],
  [0x8022, text('SOFTWARE', 'software', 763, 127)],
  [FINGERPRINT, { name: 'FINGERPRINT' }],
  [0x802b, plainAddress('RESPONSE-ORIGIN', 'responseOrigin')],
  [0x802c, plainAddress('OTHER-ADDRESS', 'otherAddress')],
]);

/** "attribute 0x0020 XOR-MAPPED-ADDRESS", the start of every attribute error. */
export function describeAttribute(type: number): string {
  const name = ATTRIBUTE_CODECS.get(type)?.name;
  return `attribute 0x${type.toString(16).padStart(4, '0')}${name ? ` ${name}` : ''}`;
}

/** Values are padded to a multiple of 4 bytes. */
export function padded(length: number): number {
  return (length + 3) & ~3;
}

/** One attribute with its header and zero padding. */
export function attributeBytes(type: number, value: Buffer): Buffer {
  const bytes = Buffer.alloc(4 + padded(value.length));
  bytes.writeUInt16BE(type, 0);
  bytes.writeUInt16BE(value.length, 2);
  bytes.set(value, 4);
  return bytes;
}

/** Every attribute the message carries, in table order. `key` is header bytes 4..19 (cookie, transaction id). */
export function encodeAttributes(attributes: StunAttributes, key: Buffer): Buffer[] {
  const encoded: Buffer[] = [];
  for (const [type, codec] of ATTRIBUTE_CODECS) {
    const value = codec.encode?.(attributes, key);
    if (value) encoded.push(attributeBytes(type, value));
  }
  return encoded;
}
