import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { AcmeSource } from '../../src/tls/acme/source.js';
import { openCertificateSource } from '../../src/tls/certificates.js';
import { captureLogs } from '../helpers/logs.js';
import { pebbleMissing, startPebble, writeChalltestsrvHook, type Pebble } from '../helpers/pebble.js';
import { waitFor } from '../helpers/wait.js';

/**
 * node-acme-client #103: acme-client 5.4 answers a 429 or 5xx by re-sending the same signed request with
 * the same, already used nonce. A loopback proxy in front of Pebble passes every request on (so Pebble
 * consumes the nonce), answers the first new-order with a 503 instead of Pebble's answer, and records the
 * nonce of every signed request. Pebble itself rejects 30 % of good nonces (PEBBLE_WFE_NONCEREJECT).
 */

interface NonceProxy {
  directory: string;
  nonces: string[];
  injected: number;
  server: Server;
}

async function startNonceProxy(pebble: Pebble): Promise<NonceProxy> {
  const upstream = new URL(pebble.directory);
  const ca = await readFile(pebble.listenerCaFile, 'utf8');
  const state = { nonces: [] as string[], injected: 0 };
  const server = createServer({
    cert: await readFile(join(pebble.dir, 'listener', 'cert.pem')),
    key: await readFile(join(pebble.dir, 'listener', 'key.pem')),
  }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const nonce = nonceOf(body);
      if (nonce !== undefined) state.nonces.push(nonce);
      // Host stays the proxy's: Pebble builds every URL it hands out from it, so the client keeps coming here
      const forward = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, ca, agent: false }, (answer) => {
        if (req.method === 'POST' && req.url?.includes('order-plz') && state.injected === 0) {
          state.injected += 1;
          answer.resume();
          res.writeHead(503, { 'content-type': 'application/problem+json' });
          res.end(JSON.stringify({ type: 'urn:ietf:params:acme:error:serverInternal', detail: 'injected by the test proxy', status: 503 }));
          return;
        }
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => res.destroy());
      forward.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { directory: `https://127.0.0.1:${port}${upstream.pathname}`, get nonces() { return state.nonces; }, get injected() { return state.injected; }, server };
}

/** The nonce in a JWS body's protected header, if the body is one. */
function nonceOf(body: Buffer): string | undefined {
  try {
    const jws = JSON.parse(body.toString()) as { protected?: string };
    return (JSON.parse(Buffer.from(jws.protected ?? '', 'base64url').toString()) as { nonce?: string }).nonce;
  } catch {
    return undefined;
  }
}

describe('badNonce and server errors (node-acme-client #103)', { skip: pebbleMissing() }, () => {
  let pebble: Pebble;
  let proxy: NonceProxy;
  let dir: string;
  before(async () => {
    pebble = await startPebble({ env: { PEBBLE_WFE_NONCEREJECT: '30' } });
    proxy = await startNonceProxy(pebble);
    dir = await mkdtemp(join(tmpdir(), 'hp-acme-nonce-'));
  });
  after(async () => {
    proxy?.server.close();
    await pebble?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('a 503 and rejected nonces: issuance still succeeds and no nonce is ever sent twice', async () => {
    const hook = await writeChalltestsrvHook(dir, pebble.challtestsrv);
    const { logger, lines } = captureLogs();
    const acme = {
      directory: proxy.directory, hostnames: ['nonce.example.com'], challenge: 'dns-01' as const, dnsHook: hook,
      propagationTimeoutMs: 10_000, nameservers: [pebble.dns], directoryCa: pebble.listenerCaFile,
    };
    const source = await openCertificateSource({ mode: 'acme', certDir: join(dir, 'certs'), hostnames: acme.hostnames, acme }, logger, {
      acme: { caPollMs: 100, propagationPollMs: 100, retryBaseMs: 400, random: () => 0.5 },
    }) as AcmeSource;
    try {
      await waitFor('a certificate from Pebble', () => /Pebble/.test(source.info().issuer), 20_000);
      assert.equal(proxy.injected, 1);
      const failure = lines.find((line) => /certificate not renewed/.test(line.msg));
      assert.match(failure?.msg, /the CA had a server error \(HTTP 503\): injected by the test proxy; retrying later/);
      const repeated = proxy.nonces.filter((nonce, index) => proxy.nonces.indexOf(nonce) !== index);
      assert.deepEqual(repeated, [], `every signed request carries a fresh nonce (${proxy.nonces.length} sent)`);
      assert.ok(proxy.nonces.length > 8, 'the whole issuance went through the proxy');
    } finally {
      source.close();
    }
  });
});
