import { generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../common/atomic-write.js';
import { err, ok, type Result } from '../../common/result.js';
import { parseTlsMaterial, type LoadedCertificate } from '../files.js';

/**
 * What mode "acme" keeps in certDir: the ACME account key and the current key and chain. Private keys are
 * 0600 and every file is replaced atomically, so a crash never leaves half a key.
 */

export interface AcmePaths {
  accountKey: string;
  /** The account's URL at its directory: with it a restart skips registration (one request less, no account update). */
  account: string;
  key: string;
  /** The leaf followed by the CA's intermediates, as served. */
  cert: string;
}

/** Names of their own: certDir may also hold a self-signed setup's cert.pem from before the switch to ACME. */
export function acmePaths(certDir: string): AcmePaths {
  return {
    accountKey: join(certDir, 'acme-account-key.pem'),
    account: join(certDir, 'acme-account.json'),
    key: join(certDir, 'acme-key.pem'),
    cert: join(certDir, 'acme-cert.pem'),
  };
}

/** A new P-256 key in PKCS#8 PEM: what both the account and the certificates use. */
export function newPrivateKey(): string {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** The account key, created on first use. Losing it only costs a new account registration. */
export async function loadOrCreateAccountKey(certDir: string): Promise<string> {
  const file = acmePaths(certDir).accountKey;
  const existing = await readIfPresent(file);
  if (existing !== undefined) return existing;
  await mkdir(certDir, { recursive: true, mode: 0o700 });
  const key = newPrivateKey();
  await writeFileAtomic(file, key, 0o600);
  return key;
}

/** The account URL registered at `directory`, if one was stored. */
export async function readAccountUrl(certDir: string, directory: string): Promise<string | undefined> {
  const text = await readIfPresent(acmePaths(certDir).account).catch(() => undefined);
  try {
    const stored = JSON.parse(text ?? '{}') as { directory?: unknown; url?: unknown };
    // an account belongs to one CA: after a switch from staging to production it is registered anew
    return stored.directory === directory && typeof stored.url === 'string' ? stored.url : undefined;
  } catch {
    return undefined;
  }
}

export async function storeAccountUrl(certDir: string, directory: string, url: string): Promise<void> {
  await writeFileAtomic(acmePaths(certDir).account, `${JSON.stringify({ directory, url }, null, 2)}\n`, 0o644);
}

/** The stored certificate; ok(undefined) when there is none yet, an error when what is there is unusable. */
export async function readStoredCertificate(certDir: string): Promise<Result<LoadedCertificate | undefined>> {
  const paths = acmePaths(certDir);
  try {
    const [cert, key] = await Promise.all([readIfPresent(paths.cert), readIfPresent(paths.key)]);
    if (cert === undefined || key === undefined) return ok(undefined);
    return parseTlsMaterial(cert, key, { certFile: paths.cert, keyFile: paths.key });
  } catch (error) {
    return err(`${certDir}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

/**
 * Validates and stores a new key and chain. Key first: a crash between the two writes leaves a new key
 * beside the old certificate, which the next start sees as unusable and replaces by issuing again.
 */
export async function storeCertificate(certDir: string, keyPem: string, chainPem: string): Promise<Result<LoadedCertificate>> {
  const paths = acmePaths(certDir);
  const loaded = parseTlsMaterial(chainPem, keyPem, { certFile: paths.cert, keyFile: paths.key });
  if (!loaded.ok) return err(`the CA's certificate is unusable: ${loaded.error}`);
  await mkdir(certDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(paths.key, loaded.value.material.key, 0o600);
  await writeFileAtomic(paths.cert, loaded.value.material.cert, 0o644);
  return loaded;
}

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
