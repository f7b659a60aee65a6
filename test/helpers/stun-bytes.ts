import { BINDING, encodeStun, newTransactionId, type StunAttributes, type StunClass } from '../../src/nat/stun-message.js';

/** A Binding message of `klass` with `attributes`, as a client sends it. */
export function bindingBytes(attributes: StunAttributes = {}, klass: StunClass = 'request', transactionId = newTransactionId()): Buffer {
  return encodeStun({ method: BINDING, class: klass, transactionId, attributes });
}

/**
 * `packet` with one more attribute of any type appended (the codec only writes the ones it knows): how a
 * test sends an unknown comprehension-required attribute or a malformed known one.
 */
export function withRawAttribute(packet: Buffer, type: number, value: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(type, 0);
  head.writeUInt16BE(value.length, 2);
  const padding = Buffer.alloc((4 - (value.length % 4)) % 4);
  const grown = Buffer.concat([packet, head, value, padding]);
  grown.writeUInt16BE(grown.length - 20, 2);
  return grown;
}
