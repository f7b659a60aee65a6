import { randomBytes, type X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import ipaddr from 'ipaddr.js';
import { writeFileAtomic } from '../common/atomic-write.js';
import { err, ok, type Result } from '../common/result.js';
import { certificateValidity, parseTlsMaterial, type LoadedCertificate, type PemOrigin } from './files.js';
import type { TlsMaterial } from './server-options.js';

const DAY_MS = 86_400_000;
/** The CA is what a phone trusts once; it should outlive many leaves. */
export const CA_VALIDITY_DAYS = 3650;
/** Apple refuses leaves valid longer than 825 days (398 for public CAs); 397 stays under both. */
export const LEAF_VALIDITY_DAYS = 397;
/** A leaf (or the CA) this close to its end is replaced, so no client ever sees an expired certificate. */
export const RENEW_BEFORE_DAYS = 30;
/** notBefore lies this far in the past so a phone whose clock runs a little slow accepts a fresh leaf. */
const BACKDATE_MS = 3_600_000;

export interface SelfSignedPaths {
  caCert: string;
  caKey: string;
  /** The leaf followed by the CA: the chain the agent serves. */
  cert: string;
  key: string;
}

export function selfSignedPaths(certDir: string): SelfSignedPaths {
  return {
    caCert: join(certDir, 'ca.pem'),
    caKey: join(certDir, 'ca-key.pem'),
    cert: join(certDir, 'cert.pem'),
    key: join(certDir, 'key.pem'),
  };
}

export interface SelfSignedState {
  paths: SelfSignedPaths;
  ca: X509Certificate;
  leaf: X509Certificate;
  /** Leaf key and the served chain: leaf, then CA (lets a client fetch the CA and compare its fingerprint). */
  material: TlsMaterial;
  /** Why a new CA was made during this call: "absent" on first start, "expiring" when the old one ran out. */
  caCreated?: 'absent' | 'expiring';
  /** Why a new leaf was issued during this call. */
  leafIssued?: string;
}

/**
 * Makes sure `certDir` holds a local CA and a current leaf for `hostnames`, creating or renewing what is
 * missing or due, and returns them. The CA is kept across leaf renewals so a phone that trusted it once keeps
 * working. A CA that exists but cannot be used is an error, never silently replaced.
 */
export async function ensureSelfSigned(certDir: string, hostnames: string[], now: Date): Promise<SelfSignedState> {
  if (hostnames.length === 0) {
    throw new Error('tls.hostnames is empty; list the names and IP addresses clients use to reach the agent, e.g. ["nas.example.com", "203.0.113.7"]');
  }
  const paths = selfSignedPaths(certDir);
  await mkdir(certDir, { recursive: true, mode: 0o700 });
  const { ca, caCreated } = await loadOrCreateCa(paths, now);
  const existing = caCreated ? err<LoadedCertificate>('the local CA is new') : await readLeaf(paths);
  const leafIssued = existing.ok ? leafRenewalReason(existing.value.leaf, ca.leaf, hostnames, now) : existing.error;
  const leaf = leafIssued === undefined && existing.ok ? existing.value : await issueLeaf(paths, ca, hostnames, now);
  const material = { key: leaf.material.key, cert: leaf.leaf.toString() + ca.leaf.toString() };
  return { paths, ca: ca.leaf, leaf: leaf.leaf, material, ...(caCreated && { caCreated }), ...(leafIssued !== undefined && { leafIssued }) };
}

async function loadOrCreateCa(paths: SelfSignedPaths, now: Date): Promise<{ ca: LoadedCertificate; caCreated?: 'absent' | 'expiring' }> {
  const [cert, key] = await Promise.all([readIfPresent(paths.caCert), readIfPresent(paths.caKey)]);
  const refuse = (problem: string): Error =>
    new Error(`${problem}. To start over with a new CA, delete ${paths.caCert} and ${paths.caKey}; phones that trusted the old CA must then trust the new one.`);
  if (!cert.ok) throw refuse(cert.error);
  if (!key.ok) throw refuse(key.error);
  if (cert.value === undefined && key.value === undefined) return { ca: await createCa(paths, now), caCreated: 'absent' };
  if (cert.value === undefined || key.value === undefined) {
    const [missing, present] = cert.value === undefined ? [paths.caCert, paths.caKey] : [paths.caKey, paths.caCert];
    throw refuse(`${missing} is missing while ${present} exists; restore it from a backup`);
  }
  const loaded = parseTlsMaterial(cert.value, key.value, { certFile: paths.caCert, keyFile: paths.caKey });
  if (!loaded.ok) throw refuse(loaded.error);
  if (!loaded.value.leaf.ca) throw refuse(`${paths.caCert} is not a CA certificate`);
  if (expiresWithin(loaded.value.leaf, now, RENEW_BEFORE_DAYS)) return { ca: await createCa(paths, now), caCreated: 'expiring' };
  return { ca: loaded.value };
}

async function readLeaf(paths: SelfSignedPaths): Promise<Result<LoadedCertificate>> {
  const [cert, key] = await Promise.all([readIfPresent(paths.cert), readIfPresent(paths.key)]);
  if (!cert.ok) return cert;
  if (!key.ok) return key;
  if (cert.value === undefined || key.value === undefined) return err('there was none');
  return parseTlsMaterial(cert.value, key.value, { certFile: paths.cert, keyFile: paths.key });
}

/** The file's text, undefined when it does not exist, or an error naming the file. */
async function readIfPresent(file: string): Promise<Result<string | undefined>> {
  try {
    return ok(await readFile(file, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? ok(undefined) : err(`${file} cannot be read (${code ?? (error as Error).message})`);
  }
}

/** Why the leaf must be replaced, or undefined while it is still good. Key/certificate agreement is checked at parse time. */
export function leafRenewalReason(leaf: X509Certificate, ca: X509Certificate, hostnames: string[], now: Date): string | undefined {
  if (!leaf.checkIssued(ca) || !leaf.verify(ca.publicKey)) return 'it was not issued by the current local CA';
  const difference = nameDifference(certificateNames(leaf), hostnames);
  if (difference !== undefined) return `tls.hostnames changed (${difference})`;
  const { notBefore, notAfter } = certificateValidity(leaf);
  if (notBefore > now) return `it is not valid before ${notBefore.toISOString()} (was the clock wrong?)`;
  if (notAfter <= now) return `it expired on ${notAfter.toISOString()}`;
  if (expiresWithin(leaf, now, RENEW_BEFORE_DAYS)) return `it expires on ${notAfter.toISOString()}, within ${RENEW_BEFORE_DAYS} days`;
  return undefined;
}

function expiresWithin(certificate: X509Certificate, now: Date, days: number): boolean {
  return certificateValidity(certificate).notAfter.getTime() - now.getTime() < days * DAY_MS;
}

/** The DNS names and IP addresses in a certificate's subjectAltName, normalised like `normalizeName`. */
export function certificateNames(certificate: X509Certificate): string[] {
  return (certificate.subjectAltName ?? '').split(', ').flatMap((entry) => {
    if (entry.startsWith('DNS:')) return [normalizeName(entry.slice('DNS:'.length))];
    if (entry.startsWith('IP Address:')) return [normalizeName(entry.slice('IP Address:'.length))];
    return [];
  });
}

/** One spelling per name: lower-case DNS names, compact IPs (OpenSSL prints "::1" as "0:0:0:0:0:0:0:1"). */
function normalizeName(name: string): string {
  return isIP(name) !== 0 ? ipaddr.parse(name).toString() : name.toLowerCase();
}

function nameDifference(inCertificate: string[], configured: string[]): string | undefined {
  const have = new Set(inCertificate);
  const want = new Set(configured.map(normalizeName));
  const added = [...want].filter((name) => !have.has(name));
  const removed = [...have].filter((name) => !want.has(name));
  if (added.length === 0 && removed.length === 0) return undefined;
  return [added.length > 0 && `added ${added.join(', ')}`, removed.length > 0 && `removed ${removed.join(', ')}`].filter(Boolean).join('; ');
}

async function createCa(paths: SelfSignedPaths, now: Date): Promise<LoadedCertificate> {
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  // A random tag makes each CA's name unique: these certificates carry no key identifiers, so a phone that
  // trusts two homeport CAs finds the right issuer by name alone.
  const name = `homeport local CA ${randomBytes(4).toString('hex')}`;
  const { generate } = await loadSelfsigned();
  const pems = await generate([{ name: 'commonName', value: name }, { name: 'organizationName', value: 'homeport' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256', // the package still defaults to SHA-1
    notBeforeDate: notBefore,
    notAfterDate: new Date(notBefore.getTime() + CA_VALIDITY_DAYS * DAY_MS),
    extensions: [
      { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  return store(pems.cert, pems.private, { certFile: paths.caCert, keyFile: paths.caKey });
}

async function issueLeaf(paths: SelfSignedPaths, ca: LoadedCertificate, hostnames: string[], now: Date): Promise<LoadedCertificate> {
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  const fullTerm = new Date(notBefore.getTime() + LEAF_VALIDITY_DAYS * DAY_MS);
  const caEnd = certificateValidity(ca.leaf).notAfter;
  const { generate } = await loadSelfsigned();
  const pems = await generate([{ name: 'commonName', value: commonNameFor(hostnames) }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256', // the package still defaults to SHA-1
    notBeforeDate: notBefore,
    notAfterDate: fullTerm < caEnd ? fullTerm : caEnd,
    ca: { key: ca.material.key, cert: ca.material.cert },
    extensions: [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: hostnames.map((host) => (isIP(host) !== 0 ? { type: 7, ip: host } : { type: 2, value: host })) },
    ],
  });
  return store(pems.cert + ca.material.cert, pems.private, { certFile: paths.cert, keyFile: paths.key });
}

/** Clients read the names from subjectAltName; the CN is for people and must fit 64 characters. */
function commonNameFor(hostnames: string[]): string {
  return hostnames.find((host) => isIP(host) === 0 && host.length <= 64) ?? 'homeport';
}

/**
 * Key first: a crash between the two writes leaves a new key beside the old certificate, which the next
 * start sees as a mismatch (a leaf is then reissued; a CA is refused with instructions).
 */
async function store(certPem: string, keyPem: string, origin: PemOrigin): Promise<LoadedCertificate> {
  const loaded = parseTlsMaterial(certPem, keyPem, origin);
  if (!loaded.ok) throw new Error(`generated certificate is unusable: ${loaded.error}`);
  await writeFileAtomic(origin.keyFile, loaded.value.material.key, 0o600);
  await writeFileAtomic(origin.certFile, loaded.value.material.cert, 0o644);
  return loaded.value;
}

/**
 * selfsigned pulls in a whole X.509 toolkit (pkijs, @peculiar/x509): loaded only when a certificate is
 * made. Kept out of a running agent's heap, it keeps every garbage collection on the data path cheaper
 * (bench/README.md).
 */
function loadSelfsigned(): Promise<typeof import('selfsigned')> {
  return import('selfsigned');
}
