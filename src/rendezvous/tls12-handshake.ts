import { constants, createHash, verify, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { err, ok, type Result } from '../common/result.js';

/**
 * Pure: the first half of a TLS 1.2 ECDHE handshake, as much as a reachability check needs. The client
 * sends a ClientHello with a fresh random; the server answers ServerHello, Certificate, ServerKeyExchange
 * and ServerHelloDone, all in the clear. The ServerKeyExchange is signed with the certificate's key over
 * both randoms, so a valid signature proves that whoever answered holds that certificate's private key
 * now (our random is fresh: nothing recorded earlier can be replayed). That is the proof a full handshake
 * gives about the server, for a fraction of the cost: no key agreement on our side, no TLS socket state,
 * no X509 object per check. The caller then drops the connection.
 *
 * Only what an agent's TLS server (src/tls/server-options.ts) can answer is offered: TLS 1.2, ECDHE with
 * an AEAD suite, ECDSA, RSA (PKCS#1 and PSS) or Ed25519 certificates.
 */

const RECORD_HANDSHAKE = 22;
const RECORD_ALERT = 21;
const TLS12 = 0x0303;
const HANDSHAKE = { clientHello: 1, serverHello: 2, certificate: 11, serverKeyExchange: 12, serverHelloDone: 14 } as const;
/** ECDHE-{ECDSA,RSA} with AES-GCM or ChaCha20-Poly1305: the TLS 1.2 suites the agent accepts. */
const CIPHER_SUITES = [0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8];
/** x25519, secp256r1, secp384r1. */
const GROUPS = [0x001d, 0x0017, 0x0018];
const NAMED_CURVE = 3;

interface SignatureScheme {
  hash: string | null;
  pss?: true;
}
/** The signature schemes offered, and how node:crypto verifies each. */
const SIGNATURE_SCHEMES = new Map<number, SignatureScheme>([
  [0x0403, { hash: 'sha256' }], [0x0503, { hash: 'sha384' }], [0x0603, { hash: 'sha512' }], // ECDSA
  [0x0804, { hash: 'sha256', pss: true }], [0x0805, { hash: 'sha384', pss: true }], [0x0806, { hash: 'sha512', pss: true }], // RSA-PSS
  [0x0401, { hash: 'sha256' }], [0x0501, { hash: 'sha384' }], [0x0601, { hash: 'sha512' }], // RSA PKCS#1 v1.5
  [0x0807, { hash: null }], // Ed25519
]);

/** Where the client random sits in a ClientHello record: after the record header, handshake header and version. */
const RANDOM_OFFSET = 5 + 4 + 2;
/** ClientHello records by server name, random left blank: every check sends the same bytes but those 32. */
const helloTemplates = new Map<string, Buffer>();
const MAX_TEMPLATES = 1024;

/** A ClientHello record; `serverName` goes into SNI when it is a DNS name (an agent picks its certificate by it). */
export function clientHello(random: Buffer, serverName?: string): Buffer {
  if (random.length !== 32) throw new RangeError('the client random is 32 bytes');
  const sni = serverName !== undefined && isIP(serverName) === 0 ? serverName : '';
  let template = helloTemplates.get(sni);
  if (template === undefined) {
    if (helloTemplates.size >= MAX_TEMPLATES) helloTemplates.clear();
    template = buildClientHello(sni);
    helloTemplates.set(sni, template);
  }
  const hello = Buffer.from(template);
  random.copy(hello, RANDOM_OFFSET);
  return hello;
}

function buildClientHello(serverName: string): Buffer {
  const extensions = [
    extension(0x000a, vector(2, u16s(GROUPS))), // supported_groups
    extension(0x000b, vector(1, Buffer.from([0]))), // ec_point_formats: uncompressed
    extension(0x000d, vector(2, u16s([...SIGNATURE_SCHEMES.keys()]))), // signature_algorithms
    extension(0x0010, vector(2, vector(1, Buffer.from('http/1.1')))), // ALPN, as a browser of the agent would send
  ];
  if (serverName !== '') {
    extensions.unshift(extension(0x0000, vector(2, Buffer.concat([Buffer.from([0]), vector(2, Buffer.from(serverName, 'ascii'))]))));
  }
  const body = Buffer.concat([
    u16s([TLS12]), Buffer.alloc(32), Buffer.from([0]), // the random, filled in per check; no session id
    vector(2, u16s(CIPHER_SUITES)), Buffer.from([1, 0]), // null compression only
    vector(2, Buffer.concat(extensions)),
  ]);
  const handshake = Buffer.concat([Buffer.from([HANDSHAKE.clientHello]), u24(body.length), body]);
  return Buffer.concat([Buffer.from([RECORD_HANDSHAKE]), u16s([0x0301]), u16(handshake.length), handshake]);
}

/** What the server's first flight says, once it is complete. */
export interface ServerFlight {
  serverRandom: Buffer;
  /** DER of the leaf certificate (the first one sent). */
  leaf: Buffer;
  /** The signed part of the ServerKeyExchange: curve type, curve and the server's ECDH share. */
  params: Buffer;
  signatureScheme: number;
  signature: Buffer;
}

/**
 * Reads the server's flight from the bytes received so far: undefined while it is incomplete, an error
 * for anything that is not a TLS 1.2 ECDHE server flight (an alert, another protocol, a malformed message).
 */
export function readServerFlight(received: Buffer): Result<ServerFlight | undefined> {
  const handshake = handshakeBytes(received);
  if (!handshake.ok) return handshake;
  const messages = new Map<number, Buffer>();
  let offset = 0;
  while (offset + 4 <= handshake.value.length) {
    const type = handshake.value[offset]!;
    const length = handshake.value.readUIntBE(offset + 1, 3);
    if (offset + 4 + length > handshake.value.length) break;
    messages.set(type, handshake.value.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
    if (type === HANDSHAKE.serverHelloDone) return parseFlight(messages);
  }
  return ok(undefined);
}

/** The handshake-protocol bytes of the complete records received so far. */
function handshakeBytes(received: Buffer): Result<Buffer> {
  const fragments: Buffer[] = [];
  let offset = 0;
  while (offset + 5 <= received.length) {
    const type = received[offset]!;
    const length = received.readUInt16BE(offset + 3);
    if (type !== RECORD_HANDSHAKE && type !== RECORD_ALERT) return err(`not a TLS server (record type ${type})`);
    if (received[offset + 1] !== 3) return err('not a TLS server (record version)');
    if (offset + 5 + length > received.length) break;
    const fragment = received.subarray(offset + 5, offset + 5 + length);
    if (type === RECORD_ALERT) return err(`the server sent TLS alert ${fragment[1] ?? '?'}`);
    fragments.push(fragment);
    offset += 5 + length;
  }
  return ok(fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments));
}

function parseFlight(messages: Map<number, Buffer>): Result<ServerFlight> {
  const hello = messages.get(HANDSHAKE.serverHello);
  const certificate = messages.get(HANDSHAKE.certificate);
  const keyExchange = messages.get(HANDSHAKE.serverKeyExchange);
  if (!hello || !certificate || !keyExchange) return err('the server flight lacks a ServerHello, Certificate or ServerKeyExchange');
  const reader = new Reader(hello);
  if (reader.u16() !== TLS12) return err('the server did not choose TLS 1.2');
  const serverRandom = reader.bytes(32);
  reader.vector(1); // session id
  if (!CIPHER_SUITES.includes(reader.u16())) return err('the server chose a cipher suite that was not offered');
  const certificates = new Reader(new Reader(certificate).vector(3));
  const leaf = certificates.vector(3);
  const exchange = new Reader(keyExchange);
  if (exchange.u8() !== NAMED_CURVE || !GROUPS.includes(exchange.u16())) return err('the server chose a key exchange that was not offered');
  exchange.vector(1); // the server's ECDH share
  const params = keyExchange.subarray(0, exchange.offset);
  const signatureScheme = exchange.u16();
  const signature = exchange.vector(2);
  if (reader.failed || certificates.failed || exchange.failed || leaf.length === 0) return err('a malformed server handshake message');
  return ok({ serverRandom, leaf, params, signatureScheme, signature });
}

/** The leaf's SHA-256 in the form X509Certificate.fingerprint256 prints: "AB:CD:…". */
export function fingerprintOf(der: Buffer): string {
  return sha256HexOf(der).toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

/** The leaf's SHA-256 as plain lowercase hex: what a check compares, without formatting per check. */
export function sha256HexOf(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex');
}

/** A colon-hex fingerprint ("AB:CD:…", any letter case) in the form sha256HexOf gives. */
export function plainHex(fingerprint: string): string {
  return fingerprint.replaceAll(':', '').toLowerCase();
}

/** Whether the ServerKeyExchange signature over both randoms and the ECDH share verifies with `publicKey`. */
export function signatureVerifies(flight: ServerFlight, clientRandom: Buffer, publicKey: KeyObject): boolean {
  const scheme = SIGNATURE_SCHEMES.get(flight.signatureScheme);
  if (!scheme) return false;
  const signed = Buffer.concat([clientRandom, flight.serverRandom, flight.params]);
  const key = scheme.pss ? { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST } : publicKey;
  try {
    return verify(scheme.hash, signed, key, flight.signature);
  } catch {
    return false; // a scheme that does not fit the key type
  }
}

/** Reads big-endian fields; past the end it yields empty values and sets `failed` instead of throwing. */
class Reader {
  offset = 0;
  failed = false;

  constructor(private readonly buffer: Buffer) {}

  u8(): number {
    return this.take(1)[0] ?? -1;
  }

  u16(): number {
    const bytes = this.take(2);
    return bytes.length === 2 ? bytes.readUInt16BE(0) : -1;
  }

  bytes(length: number): Buffer {
    return this.take(length);
  }

  /** A length-prefixed vector with a `prefix`-byte length. */
  vector(prefix: 1 | 2 | 3): Buffer {
    const length = this.take(prefix);
    return length.length === prefix ? this.take(length.readUIntBE(0, prefix)) : length;
  }

  private take(length: number): Buffer {
    if (this.offset + length > this.buffer.length) {
      this.failed = true;
      this.offset = this.buffer.length;
      return Buffer.alloc(0);
    }
    this.offset += length;
    return this.buffer.subarray(this.offset - length, this.offset);
  }
}

function u16(value: number): Buffer {
  const buffer = Buffer.alloc(2);
  buffer.writeUInt16BE(value);
  return buffer;
}

function u16s(values: number[]): Buffer {
  return Buffer.concat(values.map(u16));
}

function u24(value: number): Buffer {
  const buffer = Buffer.alloc(3);
  buffer.writeUIntBE(value, 0, 3);
  return buffer;
}

function vector(prefix: 1 | 2, body: Buffer): Buffer {
  return Buffer.concat([prefix === 1 ? Buffer.from([body.length]) : u16(body.length), body]);
}

function extension(type: number, body: Buffer): Buffer {
  return Buffer.concat([u16(type), u16(body.length), body]);
}
