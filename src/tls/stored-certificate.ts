import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { TlsConfig } from '../config/agent-types.js';
import { err, ok, type Result } from '../common/result.js';
import { renewAt } from './acme/renewal.js';
import { acmePaths } from './acme/store.js';
import { certificateInfo, type CertificateInfo } from './cert-info.js';
import { certificateValidity } from './files.js';
import { RENEW_BEFORE_DAYS, selfSignedPaths } from './selfsigned.js';

const DAY_MS = 86_400_000;

/** The file the served certificate lives in, per mode. */
export function certificateFile(tls: TlsConfig): string {
  switch (tls.mode) {
    case 'selfsigned': return selfSignedPaths(tls.certDir).cert;
    case 'files': return tls.certFile;
    case 'acme': return acmePaths(tls.certDir).cert;
  }
}

/** When homeport replaces `leaf`: the mode's policy; undefined for mode "files", which the user renews. */
export function plannedRenewal(mode: TlsConfig['mode'], leaf: X509Certificate): Date | undefined {
  const validity = certificateValidity(leaf);
  if (mode === 'selfsigned') return new Date(validity.notAfter.getTime() - RENEW_BEFORE_DAYS * DAY_MS);
  return mode === 'acme' ? renewAt(validity) : undefined;
}

/**
 * The stored certificate as `homeport cert status` shows it, read without the private key (the command
 * may run as a user who cannot read it) and without the running program.
 */
export async function readStoredCertificateInfo(tls: TlsConfig): Promise<Result<{ file: string; info: CertificateInfo }>> {
  const file = certificateFile(tls);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return err(`${file} does not exist: ${tls.mode === 'acme' ? 'the CA has not issued a certificate yet (start the program and check its log)' : 'the program has not run with this config yet'}`);
    return err(`${file} cannot be read (${code ?? (error as Error).message})`);
  }
  try {
    const leaf = new X509Certificate(text);
    return ok({ file, info: certificateInfo(leaf, plannedRenewal(tls.mode, leaf)) });
  } catch (error) {
    return err(`${file}: no readable certificate (${(error as Error).message})`);
  }
}
