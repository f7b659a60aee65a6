import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate, generateKeyPairSync, verify } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import tls from 'node:tls';
import { pino } from 'pino';
import { openCertificateSource, type CertificateSource } from '../../src/tls/certificates.js';
import { ensureSelfSigned, type SelfSignedState } from '../../src/tls/selfsigned.js';
import { TLS_SERVER_OPTIONS, createSecureContext, type TlsMaterial } from '../../src/tls/server-options.js';

const DAY_MS = 86_400_000;
const HOSTNAMES = ['nas.example.test', '127.0.0.1', '::1'];
const ECDSA_WITH_SHA256 = Buffer.from('300a06082a8648ce3d040302', 'hex'); // AlgorithmIdentifier, RFC 5758

const scratch: string[] = [];
after(() => Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true }))));

async function certDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'homeport-selfsigned-'));
  scratch.push(dir);
  return join(dir, 'certs'); // not created yet: the agent makes it
}

/** TBSCertificate, signatureAlgorithm and signature of a DER certificate (RFC 5280 4.1), by walking its TLVs. */
function signatureParts(certificate: X509Certificate): { tbs: Buffer; algorithm: Buffer; signature: Buffer } {
  const der = certificate.raw;
  const element = (offset: number): { start: number; content: number; end: number } => {
    const first = der[offset + 1]!;
    const lengthBytes = first & 0x80 ? first & 0x7f : 0;
    const length = lengthBytes ? der.readUIntBE(offset + 2, lengthBytes) : first;
    return { start: offset, content: offset + 2 + lengthBytes, end: offset + 2 + lengthBytes + length };
  };
  const tbs = element(element(0).content);
  const algorithm = element(tbs.end);
  const signature = element(algorithm.end);
  return {
    tbs: der.subarray(tbs.start, tbs.end),
    algorithm: der.subarray(algorithm.start, algorithm.end),
    signature: der.subarray(signature.content + 1, signature.end), // skip the BIT STRING's unused-bits byte
  };
}

function assertSignedWithSha256(certificate: X509Certificate, issuer: X509Certificate): void {
  const { tbs, algorithm, signature } = signatureParts(certificate);
  assert.deepEqual(algorithm, ECDSA_WITH_SHA256, 'signature algorithm is ecdsa-with-SHA256');
  assert.equal(verify('sha256', tbs, issuer.publicKey, signature), true, 'signature verifies with SHA-256');
}

function assertP256(certificate: X509Certificate): void {
  assert.equal(certificate.publicKey.asymmetricKeyType, 'ec');
  assert.equal(certificate.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
}

type Handshake = { authorized: true; chain: string[] } | { authorized: false; code: string };

/** Serves `material` the way the agent does (per-socket SecureContext) and connects once with `client`. */
async function connectTo(material: TlsMaterial, client: tls.ConnectionOptions): Promise<Handshake> {
  const secureContext = createSecureContext(material);
  const server = net.createServer((socket) => {
    new tls.TLSSocket(socket, { ...TLS_SERVER_OPTIONS, isServer: true, secureContext }).on('error', () => socket.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  try {
    return await new Promise<Handshake>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port, ...client }, () => {
        const leaf = socket.getPeerCertificate(true);
        resolve({ authorized: true, chain: [leaf.fingerprint256, leaf.issuerCertificate.fingerprint256] });
        socket.destroy();
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve({ authorized: false, code: error.code ?? error.message }));
    });
  } finally {
    server.close();
  }
}

describe('self-signed CA and leaf', () => {
  let dir: string;
  let first: SelfSignedState;
  const now = new Date();

  test('first start creates a CA and a leaf, keys mode 0600', async () => {
    dir = await certDir();
    first = await ensureSelfSigned(dir, HOSTNAMES, now);
    assert.equal(first.caCreated, 'absent');
    assert.equal(typeof first.leafIssued, 'string');
    for (const name of ['ca-key.pem', 'key.pem']) {
      assert.equal((await stat(join(dir, name))).mode & 0o777, 0o600, `${name} mode`);
    }
    const caOnDisk = new X509Certificate(await readFile(join(dir, 'ca.pem')));
    assert.equal(caOnDisk.fingerprint256, first.ca.fingerprint256);
  });

  test('the CA is a P-256 CA signed with SHA-256', () => {
    assert.equal(first.ca.ca, true);
    assertP256(first.ca);
    assertSignedWithSha256(first.ca, first.ca);
  });

  test('the leaf: P-256, SHA-256 by the CA, serverAuth, every hostname and IP, at most 825 days', () => {
    const { leaf, ca } = first;
    assert.equal(leaf.ca, false);
    assertP256(leaf);
    assertSignedWithSha256(leaf, ca);
    assert.equal(leaf.checkIssued(ca), true);
    assert.deepEqual(leaf.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'extended key usage is serverAuth only');
    assert.equal(leaf.checkHost('nas.example.test'), 'nas.example.test');
    assert.equal(leaf.checkIP('127.0.0.1'), '127.0.0.1'); // only iPAddress (type 7) entries match checkIP
    assert.equal(leaf.checkIP('::1'), '::1');
    assert.equal(leaf.checkHost('other.example.test'), undefined);
    const days = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / DAY_MS;
    assert.ok(days <= 825, `validity ${days} days`);
    assert.ok(Date.parse(leaf.validFrom) <= now.getTime() && Date.parse(leaf.validTo) > now.getTime() + 300 * DAY_MS);
  });

  test('a client that trusts the CA connects by name and by IP; others are refused', async () => {
    const ca = await readFile(join(dir, 'ca.pem'), 'utf8');
    const byName = await connectTo(first.material, { ca, servername: 'nas.example.test' });
    assert.deepEqual(byName, { authorized: true, chain: [first.leaf.fingerprint256, first.ca.fingerprint256] });
    assert.equal((await connectTo(first.material, { ca })).authorized, true, 'IP SAN 127.0.0.1');
    assert.deepEqual(await connectTo(first.material, { servername: 'nas.example.test' }), { authorized: false, code: 'SELF_SIGNED_CERT_IN_CHAIN' });
    assert.deepEqual(await connectTo(first.material, { ca, servername: 'other.example.test' }), { authorized: false, code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  test('openssl agrees the chain is valid for a TLS server', { skip: !hasOpenssl() && 'openssl not installed' }, () => {
    const output = execFileSync('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.pem'), join(dir, 'cert.pem')], { encoding: 'utf8' });
    assert.match(output, /cert\.pem: OK/);
    const fingerprint = execFileSync('openssl', ['x509', '-in', join(dir, 'ca.pem'), '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
    assert.equal(fingerprint.trim().split('=')[1], first.ca.fingerprint256);
  });

  test('a restart reuses the CA and the leaf', async () => {
    const before = await readFile(join(dir, 'cert.pem'), 'utf8');
    const again = await ensureSelfSigned(dir, HOSTNAMES, new Date(now.getTime() + DAY_MS));
    assert.equal(again.caCreated, undefined);
    assert.equal(again.leafIssued, undefined);
    assert.equal(again.ca.fingerprint256, first.ca.fingerprint256);
    assert.equal(again.leaf.fingerprint256, first.leaf.fingerprint256);
    assert.deepEqual(again.material, first.material);
    assert.equal(await readFile(join(dir, 'cert.pem'), 'utf8'), before);
  });

  test('changed hostnames renew the leaf under the same CA', async () => {
    const changed = await ensureSelfSigned(dir, [...HOSTNAMES, 'media.example.test'], now);
    assert.match(changed.leafIssued ?? '', /hostnames changed \(added media\.example\.test\)/);
    assert.equal(changed.caCreated, undefined);
    assert.equal(changed.ca.fingerprint256, first.ca.fingerprint256);
    assert.notEqual(changed.leaf.fingerprint256, first.leaf.fingerprint256);
    assert.equal(changed.leaf.checkHost('media.example.test'), 'media.example.test');
    const ca = await readFile(join(dir, 'ca.pem'), 'utf8');
    assert.equal((await connectTo(changed.material, { ca, servername: 'media.example.test' })).authorized, true);

    const removed = await ensureSelfSigned(dir, HOSTNAMES, now);
    assert.match(removed.leafIssued ?? '', /removed media\.example\.test/);
    assert.equal(removed.leaf.checkHost('media.example.test'), undefined);
  });

  test('the leaf is renewed 30 days before it expires, not earlier, and keeps the CA', async () => {
    const current = await ensureSelfSigned(dir, HOSTNAMES, now);
    const expiry = Date.parse(current.leaf.validTo);
    const early = await ensureSelfSigned(dir, HOSTNAMES, new Date(expiry - 31 * DAY_MS));
    assert.equal(early.leafIssued, undefined);
    const due = await ensureSelfSigned(dir, HOSTNAMES, new Date(expiry - 29 * DAY_MS));
    assert.match(due.leafIssued ?? '', /expires on/);
    assert.equal(due.ca.fingerprint256, first.ca.fingerprint256);
    assert.ok(Date.parse(due.leaf.validTo) > expiry + 300 * DAY_MS);
  });

  test('a damaged leaf or a foreign key is replaced, the CA kept', async () => {
    await writeFile(join(dir, 'cert.pem'), 'not a certificate');
    const damaged = await ensureSelfSigned(dir, HOSTNAMES, now);
    assert.match(damaged.leafIssued ?? '', /cert\.pem: no PEM certificate/);
    const foreignKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
    await writeFile(join(dir, 'key.pem'), foreignKey);
    const mismatched = await ensureSelfSigned(dir, HOSTNAMES, now);
    assert.match(mismatched.leafIssued ?? '', /key\.pem: the private key does not belong/);
    assert.equal(mismatched.ca.fingerprint256, first.ca.fingerprint256);
    assert.equal((await stat(join(dir, 'key.pem'))).mode & 0o777, 0o600);
  });

  test('a damaged or half-missing CA refuses to start instead of silently replacing it', async () => {
    const broken = await certDir();
    await ensureSelfSigned(broken, HOSTNAMES, now);
    await rm(join(broken, 'ca-key.pem'));
    await assert.rejects(ensureSelfSigned(broken, HOSTNAMES, now), /ca-key\.pem is missing while .*ca\.pem exists.*delete .*ca\.pem and .*ca-key\.pem/);
    await writeFile(join(broken, 'ca-key.pem'), 'garbage');
    await assert.rejects(ensureSelfSigned(broken, HOSTNAMES, now), /ca-key\.pem: no PEM private key found/);
  });

  test('an empty hostname list is refused', async () => {
    await assert.rejects(ensureSelfSigned(await certDir(), [], now), /tls\.hostnames is empty/);
  });
});

describe('self-signed certificate source', () => {
  const logger = pino({ level: 'silent' });

  test('describe() names the CA file and its SHA-256 fingerprint; the leaf fingerprint matches what is served', async () => {
    const dir = await certDir();
    const source = await openCertificateSource({ mode: 'selfsigned', certDir: dir, hostnames: HOSTNAMES }, logger);
    try {
      const ca = new X509Certificate(await readFile(join(dir, 'ca.pem')));
      const lines = source.describe().join('\n');
      assert.ok(lines.includes(join(dir, 'ca.pem')), lines);
      assert.ok(lines.includes(ca.fingerprint256), lines);
      const served = await connectTo(source.current(), { ca: ca.toString(), servername: 'nas.example.test' });
      assert.deepEqual(served, { authorized: true, chain: [source.leafFingerprint256(), ca.fingerprint256] });
    } finally {
      source.close();
    }
  });

  test('the periodic check renews a leaf that came due and announces it', async () => {
    const dir = await certDir();
    let clock = new Date();
    const source = await openCertificateSource({ mode: 'selfsigned', certDir: dir, hostnames: HOSTNAMES }, logger, { now: () => clock, renewalCheckMs: 20 });
    try {
      const before = source.leafFingerprint256();
      const caBefore = await readFile(join(dir, 'ca.pem'), 'utf8');
      await new Promise((resolve) => setTimeout(resolve, 100)); // several checks pass with nothing due
      assert.equal(source.leafFingerprint256(), before);
      clock = new Date(clock.getTime() + 380 * DAY_MS);
      await nextChange(source);
      assert.notEqual(source.leafFingerprint256(), before);
      assert.equal(await readFile(join(dir, 'ca.pem'), 'utf8'), caBefore);
      const leaf = new X509Certificate(source.current().cert.slice(0, source.current().cert.indexOf('-----END CERTIFICATE-----') + 25));
      assert.equal(leaf.fingerprint256, source.leafFingerprint256());
    } finally {
      source.close();
    }
  });
});

/** Resolves on the next 'change'; the timer holds the event loop open, as the agent's server would. */
function nextChange(source: CertificateSource, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'change' within ${timeoutMs} ms`)), timeoutMs);
    source.on('change', () => resolve(clearTimeout(timer)));
  });
}

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
