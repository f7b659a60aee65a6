import type { X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from '../common/logger.js';
import type { TlsConfig } from '../config/agent-types.js';
import { certificateValidity, certificateWarnings, readTlsFiles, watchFiles, type FileWatch, type LoadedCertificate } from './files.js';
import { ensureSelfSigned, type SelfSignedState } from './selfsigned.js';
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
  close(): void;
}

/** A certificate the agent cannot start with; the message names the file and the fix. */
export class TlsSetupError extends Error {
  override name = 'TlsSetupError';
}

export interface CertificateSourceOptions {
  /** Clock for expiry decisions (tests move it forward). */
  now?: () => Date;
  /** How often the self-signed leaf is checked for renewal; default daily. */
  renewalCheckMs?: number;
  /** Quiet time after a file change before the files are read; default 500 ms. */
  watchDebounceMs?: number;
}

const DAILY_MS = 86_400_000;

export async function openCertificateSource(tls: TlsConfig, logger: Logger, options: CertificateSourceOptions = {}): Promise<CertificateSource> {
  const now = options.now ?? (() => new Date());
  const log = logger.child({ component: 'tls' });
  return tls.mode === 'selfsigned'
    ? SelfSignedSource.open(tls, log, now, options.renewalCheckMs ?? DAILY_MS)
    : FileSource.open(tls, log, now, options.watchDebounceMs ?? 500);
}

abstract class BaseSource extends EventEmitter<{ change: [] }> implements CertificateSource {
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
  abstract close(): void;

  protected replace(next: LoadedCertificate): void {
    const previous = this.loaded.material;
    if (next.material.cert === previous.cert && next.material.key === previous.key) return;
    this.loaded = next;
    this.log.info({ subject: next.leaf.subject, validTo: next.leaf.validTo, fingerprint256: next.leaf.fingerprint256 }, 'TLS certificate replaced');
    this.emit('change');
  }
}

class SelfSignedSource extends BaseSource {
  private readonly timer: NodeJS.Timeout;

  static async open(tls: Extract<TlsConfig, { mode: 'selfsigned' }>, log: Logger, now: () => Date, checkMs: number): Promise<SelfSignedSource> {
    const state = await ensureSelfSigned(tls.certDir, tls.hostnames, now()).catch((error: Error) => {
      throw new TlsSetupError(error.message);
    });
    logChanges(state, log);
    return new SelfSignedSource(tls, state, log, now, checkMs);
  }

  private constructor(
    private readonly tls: Extract<TlsConfig, { mode: 'selfsigned' }>,
    private state: SelfSignedState,
    log: Logger,
    private readonly now: () => Date,
    checkMs: number,
  ) {
    super(state, log);
    this.timer = setInterval(() => void this.reload(), checkMs);
    this.timer.unref();
  }

  protected async refresh(): Promise<void> {
    this.state = await ensureSelfSigned(this.tls.certDir, this.tls.hostnames, this.now());
    logChanges(this.state, this.log);
    this.replace(this.state);
  }

  describe(): string[] {
    const { ca, leaf, paths } = this.state;
    return [
      `TLS: self-signed certificate for ${this.tls.hostnames.join(', ')}, valid until ${day(leaf)}, renewed automatically`,
      `Trust this CA once on your phone: ${paths.caCert}`,
      `CA SHA-256 fingerprint: ${ca.fingerprint256}`,
    ];
  }

  close(): void {
    clearInterval(this.timer);
  }
}

function logChanges(state: SelfSignedState, log: Logger): void {
  if (state.caCreated === 'absent') log.info({ file: state.paths.caCert }, 'created a local CA; trust it once on your phone');
  if (state.caCreated === 'expiring') {
    log.warn({ file: state.paths.caCert }, 'the local CA was about to expire and was replaced; phones must trust the new CA');
  }
  if (state.leafIssued !== undefined) log.info({ file: state.paths.cert, validTo: state.leaf.validTo }, `issued a new TLS certificate: ${state.leafIssued}`);
}

class FileSource extends BaseSource {
  private watch: FileWatch | undefined;

  static async open(tls: Extract<TlsConfig, { mode: 'files' }>, log: Logger, now: () => Date, debounceMs: number): Promise<FileSource> {
    const loaded = await readTlsFiles(tls);
    if (!loaded.ok) throw new TlsSetupError(loaded.error);
    const source = new FileSource(tls, loaded.value, log, now);
    source.warnAbout(loaded.value.leaf);
    try {
      source.watch = watchFiles([tls.certFile, tls.keyFile], () => void source.reload(), (error) => source.watchFailed(error), debounceMs);
    } catch (error) {
      source.watchFailed(error as Error);
    }
    return source;
  }

  private constructor(
    private readonly tls: Extract<TlsConfig, { mode: 'files' }>,
    loaded: LoadedCertificate,
    log: Logger,
    private readonly now: () => Date,
  ) {
    super(loaded, log);
  }

  protected async refresh(): Promise<void> {
    const loaded = await readTlsFiles(this.tls);
    if (!loaded.ok) throw new Error(loaded.error);
    this.warnAbout(loaded.value.leaf);
    this.replace(loaded.value);
  }

  private warnAbout(leaf: X509Certificate): void {
    for (const warning of certificateWarnings(leaf, this.tls.hostnames, this.now())) this.log.warn({ file: this.tls.certFile }, warning);
  }

  private watchFailed(error: Error): void {
    this.log.warn({ err: error }, `cannot watch the TLS files for changes (${error.message}); send SIGHUP after replacing them`);
  }

  describe(): string[] {
    const { leaf } = this.loaded;
    return [
      `TLS: certificate ${this.tls.certFile} for ${leaf.subject.replaceAll('\n', ', ')}, issued by ${leaf.issuer.replaceAll('\n', ', ')}, valid until ${day(leaf)}`,
      `TLS: reloaded when ${this.tls.certFile} or ${this.tls.keyFile} changes, or on SIGHUP`,
    ];
  }

  close(): void {
    this.watch?.close();
  }
}

function day(certificate: X509Certificate): string {
  return certificateValidity(certificate).notAfter.toISOString().slice(0, 10);
}
