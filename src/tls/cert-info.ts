import type { X509Certificate } from 'node:crypto';
import { certificateValidity } from './files.js';
import { certificateNames } from './selfsigned.js';

/** What `homeport status` and `homeport cert status` show about the served certificate. */
export interface CertificateInfo {
  /** The issuer's common name (its whole name when it has none). */
  issuer: string;
  names: string[];
  /** ISO time. */
  notAfter: string;
  /** ISO time homeport replaces it; absent when it never does (mode "files"). */
  renewAt?: string;
  /** Why the last renewal failed, while it keeps failing. */
  lastError?: string;
}

export function certificateInfo(leaf: X509Certificate, renewAt?: Date, lastError?: string): CertificateInfo {
  return {
    issuer: commonName(leaf.issuer),
    names: certificateNames(leaf),
    notAfter: certificateValidity(leaf).notAfter.toISOString(),
    ...(renewAt !== undefined && { renewAt: renewAt.toISOString() }),
    ...(lastError !== undefined && { lastError }),
  };
}

/** "C=US\nO=Let's Encrypt\nCN=R11" → "R11". */
function commonName(distinguishedName: string): string {
  const cn = distinguishedName.split('\n').find((part) => part.startsWith('CN='));
  return cn?.slice('CN='.length) ?? distinguishedName.replaceAll('\n', ', ');
}
