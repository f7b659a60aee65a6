import type { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from '../common/logger.js';
import type { CertificateInfo } from './cert-info.js';
import { certificateValidity, type LoadedCertificate } from './files.js';
import type { TlsMaterial } from './server-options.js';

/**
 * The agent's current key and certificate chain. Whoever builds SecureContexts listens for 'change' and
 * swaps them: new connections get the new certificate, open ones keep theirs.
 */
export interface CertificateSource {
  current(): TlsMaterial;
  /** SHA-256 of the served leaf's DER, colon hex like `openssl x509 -fingerprint -sha256`. */
  leafFingerprint256(): string;
  on(event: 'change', listener: () => void): this;
  off(event: 'change', listener: () => void): this;
  /** Re-reads the files (SIGHUP); a bad new file is logged and the current material kept. */
  reload(): Promise<void>;
  /** Lines for the agent to print at start. */
  describe(): string[];
  /** The served certificate for status: issuer, names, expiry, when it is renewed. */
  info(): CertificateInfo;
  close(): void;
}

/** A certificate the agent cannot start with; the message names the file and the fix. */
export class TlsSetupError extends Error {
  override name = 'TlsSetupError';
}

export abstract class BaseSource extends EventEmitter<{ change: [] }> implements CertificateSource {
  private queue: Promise<void> = Promise.resolve();

  protected constructor(protected loaded: LoadedCertificate, protected readonly log: Logger) {
    super();
  }

  current(): TlsMaterial {
    return this.loaded.material;
  }

  leafFingerprint256(): string {
    return this.loaded.leaf.fingerprint256;
  }

  /** Serialised: a SIGHUP arriving during a timer or watch triggered reload waits its turn. */
  reload(): Promise<void> {
    this.queue = this.queue.then(() => this.refresh()).catch((error: Error) => {
      this.log.error({ err: error }, `TLS certificate not reloaded, still serving the previous one: ${error.message}`);
    });
    return this.queue;
  }

  protected abstract refresh(): Promise<void>;
  abstract describe(): string[];
  abstract info(): CertificateInfo;
  abstract close(): void;

  protected replace(next: LoadedCertificate): void {
    const previous = this.loaded.material;
    if (next.material.cert === previous.cert && next.material.key === previous.key) return;
    this.loaded = next;
    this.log.info({ subject: next.leaf.subject, validTo: next.leaf.validTo, fingerprint256: next.leaf.fingerprint256 }, 'TLS certificate replaced');
    this.emit('change');
  }
}

/** The certificate's last day, for start-up lines. */
export function day(certificate: X509Certificate): string {
  return certificateValidity(certificate).notAfter.toISOString().slice(0, 10);
}
