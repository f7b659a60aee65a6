import assert from 'node:assert/strict';
import net from 'node:net';
import { before, describe, test } from 'node:test';
import tls from 'node:tls';
import { generate } from 'selfsigned';
import { TLS_SERVER_OPTIONS, createSecureContext, type TlsMaterial } from '../../src/tls/server-options.js';

type Outcome = { ok: true; protocol: string; cipher: string; alpn: string | false } | { ok: false; code: string };

/** One handshake against 127.0.0.1:port; the outcome a client would see. */
function handshake(port: number, client: tls.ConnectionOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...client }, () => {
      resolve({ ok: true, protocol: socket.getProtocol() ?? '', cipher: socket.getCipher().name, alpn: socket.alpnProtocol ?? false });
      socket.destroy();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve({ ok: false, code: error.code ?? error.message }));
  });
}

/** A listening server on 127.0.0.1 that destroys every connection when closed. */
async function listen(server: net.Server): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** The agent's way: the gate accepts TCP, then a per-socket TLSSocket with the shared SecureContext. */
function perSocketServer(material: TlsMaterial): net.Server {
  const secureContext = createSecureContext(material);
  return net.createServer((socket) => {
    const secure = new tls.TLSSocket(socket, { ...TLS_SERVER_OPTIONS, isServer: true, secureContext });
    secure.on('error', () => secure.destroy());
  });
}

/** A plain tls.Server built from the exported options plus key and cert. */
function optionsServer(material: TlsMaterial): net.Server {
  return tls.createServer({ ...TLS_SERVER_OPTIONS, ...material }).on('tlsClientError', () => undefined);
}

/** Accepts everything OpenSSL can still do: proves that a refused client is refused by our policy. */
function permissiveServer(material: TlsMaterial): net.Server {
  return tls.createServer({ ...material, minVersion: 'TLSv1', ciphers: 'ALL@SECLEVEL=0', dhparam: 'auto' }).on('tlsClientError', () => undefined);
}

async function material(keyType: 'ec' | 'rsa'): Promise<TlsMaterial> {
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keyType, algorithm: 'sha256' });
  return { key: pems.private, cert: pems.cert };
}

const OLD_CLIENT = { ciphers: 'DEFAULT@SECLEVEL=0' }; // OpenSSL 3 refuses TLS 1.1 and SHA-1 suites above level 0

/** Clients the policy must refuse, each with the certificate type that could otherwise serve it. */
const REFUSED: Array<{ name: string; keyType: 'ec' | 'rsa'; client: tls.ConnectionOptions }> = [
  { name: 'TLS 1.1', keyType: 'ec', client: { ...OLD_CLIENT, minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1' } },
  { name: 'TLS 1.0', keyType: 'rsa', client: { ...OLD_CLIENT, minVersion: 'TLSv1', maxVersion: 'TLSv1' } },
  { name: 'TLS 1.2 with only ECDHE-ECDSA-AES128-SHA (CBC)', keyType: 'ec', client: { ...OLD_CLIENT, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA@SECLEVEL=0' } },
  { name: 'TLS 1.2 with only ECDHE-ECDSA-AES128-SHA256 (CBC)', keyType: 'ec', client: { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256' } },
  { name: 'TLS 1.2 with only ECDHE-RSA-AES128-SHA (CBC)', keyType: 'rsa', client: { ...OLD_CLIENT, maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES128-SHA@SECLEVEL=0' } },
  { name: 'TLS 1.2 with only AES128-GCM-SHA256 (RSA key exchange)', keyType: 'rsa', client: { maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256' } },
  { name: 'TLS 1.2 with only DHE-RSA-AES128-GCM-SHA256 (finite-field DH)', keyType: 'rsa', client: { maxVersion: 'TLSv1.2', ciphers: 'DHE-RSA-AES128-GCM-SHA256' } },
];

/** Modern clients the policy must serve. */
const ACCEPTED: Array<{ name: string; keyType: 'ec' | 'rsa'; client: tls.ConnectionOptions; protocol: string; cipher?: string }> = [
  { name: 'default client', keyType: 'ec', client: {}, protocol: 'TLSv1.3' },
  { name: 'TLS 1.2 ECDSA AES-GCM', keyType: 'ec', client: { maxVersion: 'TLSv1.2' }, protocol: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256' },
  { name: 'TLS 1.2 ECDSA ChaCha20', keyType: 'ec', client: { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-CHACHA20-POLY1305' }, protocol: 'TLSv1.2', cipher: 'ECDHE-ECDSA-CHACHA20-POLY1305' },
  { name: 'TLS 1.2 RSA AES-256-GCM', keyType: 'rsa', client: { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-RSA-AES256-GCM-SHA384' }, protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES256-GCM-SHA384' },
];

const SERVERS = { 'per-socket secureContext': perSocketServer, 'tls.createServer options': optionsServer };

describe('TLS server policy', () => {
  const materials = new Map<'ec' | 'rsa', TlsMaterial>();
  before(async () => {
    materials.set('ec', await material('ec'));
    materials.set('rsa', await material('rsa'));
  });

  for (const [serverName, makeServer] of Object.entries(SERVERS)) {
    describe(serverName, () => {
      for (const { name, keyType, client } of REFUSED) {
        test(`refuses ${name}`, async () => {
          const control = await listen(permissiveServer(materials.get(keyType)!));
          const controlOutcome = await handshake(control.port, client).finally(() => control.close());
          assert.equal(controlOutcome.ok, true, `the client itself works against a permissive server: ${JSON.stringify(controlOutcome)}`);

          const server = await listen(makeServer(materials.get(keyType)!));
          const outcome = await handshake(server.port, client).finally(() => server.close());
          assert.equal(outcome.ok, false, `handshake should fail: ${JSON.stringify(outcome)}`);
        });
      }

      for (const { name, keyType, client, protocol, cipher } of ACCEPTED) {
        test(`serves ${name} with ALPN http/1.1`, async () => {
          const server = await listen(makeServer(materials.get(keyType)!));
          const outcome = await handshake(server.port, { ...client, ALPNProtocols: ['h2', 'http/1.1'] }).finally(() => server.close());
          assert.ok(outcome.ok, JSON.stringify(outcome));
          assert.equal(outcome.protocol, protocol);
          if (cipher !== undefined) assert.equal(outcome.cipher, cipher);
          assert.match(outcome.cipher, /GCM|CHACHA20/);
          assert.equal(outcome.alpn, 'http/1.1');
        });
      }
    });
  }

});
