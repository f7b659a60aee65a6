import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { basename, dirname } from 'node:path';
import { err, ok, type Result } from '../common/result.js';
import { createSecureContext, type TlsMaterial } from './server-options.js';

/** A certificate chain and key that parsed, belong together and are accepted by OpenSSL. */
export interface LoadedCertificate {
  material: TlsMaterial;
  /** The served certificate: the first one in the chain. */
  leaf: X509Certificate;
}

/** The files the PEM texts came from, named in every error. */
export interface PemOrigin {
  certFile: string;
  keyFile: string;
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
// PKCS#8 "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY"
const PRIVATE_KEY_BLOCK = /-----BEGIN ([A-Z0-9 ]*?)PRIVATE KEY-----[\s\S]*?-----END \1PRIVATE KEY-----/;

/**
 * Validates a PEM chain (server certificate first, then intermediates) and its private key. Only the PEM
 * blocks are kept, so comments or an "EC PARAMETERS" block around them do no harm.
 */
export function parseTlsMaterial(certPem: string, keyPem: string, origin: PemOrigin): Result<LoadedCertificate> {
  const chain = parseChain(certPem, origin.certFile);
  if (!chain.ok) return chain;
  const key = parsePrivateKey(keyPem, origin.keyFile);
  if (!key.ok) return key;
  const mismatch = keyMismatch(chain.value, key.value.object, origin);
  if (mismatch !== undefined) return err(mismatch);
  const material = { key: key.value.pem, cert: chain.value.map((certificate) => certificate.toString()).join('') };
  try {
    createSecureContext(material);
  } catch (error) {
    return err(`${origin.certFile}: OpenSSL refuses this certificate with ${origin.keyFile} (${(error as Error).message}); use an RSA key of at least 2048 bits or an EC P-256/P-384 key`);
  }
  return ok({ material, leaf: chain.value[0]! });
}

function parseChain(text: string, file: string): Result<X509Certificate[]> {
  const blocks = text.match(CERTIFICATE_BLOCK) ?? [];
  if (blocks.length === 0) {
    return err(`${file}: no PEM certificate found (expected "-----BEGIN CERTIFICATE-----"); convert a DER file with "openssl x509 -inform der -in cert.der -out cert.pem"`);
  }
  const chain: X509Certificate[] = [];
  for (const [index, block] of blocks.entries()) {
    try {
      chain.push(new X509Certificate(block));
    } catch (error) {
      return err(`${file}: certificate #${index + 1} is damaged (${(error as Error).message}); copy the file again from its source`);
    }
  }
  return ok(chain);
}

function parsePrivateKey(text: string, file: string): Result<{ pem: string; object: KeyObject }> {
  const match = PRIVATE_KEY_BLOCK.exec(text);
  if (!match) {
    return err(`${file}: no PEM private key found (expected "-----BEGIN PRIVATE KEY-----"); point tls.keyFile at the key that belongs to the certificate`);
  }
  const pem = `${match[0]}\n`;
  if (match[1] === 'ENCRYPTED ' || pem.includes('Proc-Type: 4,ENCRYPTED')) {
    return err(`${file}: the private key is encrypted with a passphrase; homeport needs it unencrypted: "openssl pkey -in ${basename(file)} -out plain-key.pem" and keep that file mode 0600`);
  }
  try {
    return ok({ pem, object: createPrivateKey(pem) });
  } catch (error) {
    return err(`${file}: the private key cannot be read (${(error as Error).message}); copy the file again from its source`);
  }
}

function keyMismatch(chain: X509Certificate[], key: KeyObject, origin: PemOrigin): string | undefined {
  if (chain[0]!.checkPrivateKey(key)) return undefined;
  const match = chain.findIndex((certificate) => certificate.checkPrivateKey(key));
  if (match > 0) {
    return `${origin.certFile}: the server certificate must come first, but the key in ${origin.keyFile} belongs to certificate #${match + 1}; reorder the file (server certificate, then intermediates)`;
  }
  return `${origin.keyFile}: the private key does not belong to the certificate in ${origin.certFile} (${chain[0]!.subject}); use the key that was created with that certificate`;
}

/** Reads and validates the user's certificate (+chain) and key files; every error names the file and the fix. */
export async function readTlsFiles(origin: PemOrigin): Promise<Result<LoadedCertificate>> {
  const cert = await readPem(origin.certFile, 'tls.certFile');
  if (!cert.ok) return cert;
  const key = await readPem(origin.keyFile, 'tls.keyFile');
  if (!key.ok) return key;
  return parseTlsMaterial(cert.value, key.value, origin);
}

async function readPem(file: string, configKey: string): Promise<Result<string>> {
  try {
    return ok(await readFile(file, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    const fix = code === 'ENOENT' ? `check ${configKey}` : `check ${configKey} and that the agent's user may read the file`;
    return err(`${file}: cannot be read (${code}); ${fix}`);
  }
}

export function certificateValidity(certificate: X509Certificate): { notBefore: Date; notAfter: Date } {
  // Node 20 has only the OpenSSL text form ("Dec 27 17:42:31 2027 GMT"), which Date parses.
  return { notBefore: new Date(certificate.validFrom), notAfter: new Date(certificate.validTo) };
}

/** Problems a user should hear about although the certificate can still be served. */
export function certificateWarnings(leaf: X509Certificate, hostnames: string[], now: Date): string[] {
  const { notBefore, notAfter } = certificateValidity(leaf);
  const warnings: string[] = [];
  if (notAfter <= now) warnings.push(`the certificate expired on ${notAfter.toISOString()}; clients will refuse it`);
  if (notBefore > now) warnings.push(`the certificate is not valid before ${notBefore.toISOString()}; check the system clock`);
  const uncovered = hostnames.filter((host) => !certificateCovers(leaf, host));
  if (uncovered.length > 0) warnings.push(`the certificate does not cover tls.hostnames ${uncovered.join(', ')}; clients using those names will refuse it`);
  return warnings;
}

function certificateCovers(leaf: X509Certificate, host: string): boolean {
  if (isIP(host) !== 0) return leaf.checkIP(host) !== undefined;
  // checkHost matches the certificate's wildcards; a configured wildcard must appear literally.
  return leaf.checkHost(host) !== undefined || (leaf.subjectAltName ?? '').split(', ').includes(`DNS:${host}`);
}

export interface FileWatch {
  close(): void;
}

/**
 * Calls `onChange` once things settle after any of `files` changes. Watches the directories, not the files:
 * replacing a file by rename (editors, certbot's symlink swap, writeFileAtomic) leaves a watch on the old
 * inode silent. Throws if a directory cannot be watched.
 */
export function watchFiles(files: string[], onChange: () => void, onError: (error: Error) => void, debounceMs: number): FileWatch {
  let timer: NodeJS.Timeout | undefined;
  const settle = (): void => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
    timer.unref();
  };
  const namesByDirectory = new Map<string, Set<string>>();
  for (const file of files) {
    const names = namesByDirectory.get(dirname(file)) ?? new Set<string>();
    namesByDirectory.set(dirname(file), names.add(basename(file)));
  }
  const watchers: FSWatcher[] = [];
  const close = (): void => {
    clearTimeout(timer);
    for (const watcher of watchers) watcher.close();
  };
  try {
    for (const [directory, names] of namesByDirectory) {
      const watcher = watch(directory, { persistent: false }, (_event, name) => {
        if (name === null || names.has(name.toString())) settle();
      });
      watcher.on('error', onError);
      watchers.push(watcher);
    }
  } catch (error) {
    close();
    throw error;
  }
  return { close };
}
