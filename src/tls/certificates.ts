import type { X509Certificate } from 'node:crypto';
import type { Logger } from '../common/logger.js';
import type { TlsConfig } from '../config/agent-types.js';
import { AcmeSource, type AcmeTiming } from './acme/source.js';
import type { Http01Responder } from './acme/http01.js';
import { certificateInfo, type CertificateInfo } from './cert-info.js';
import { certificateWarnings, readTlsFiles, watchFiles, type FileWatch, type LoadedCertificate } from './files.js';
import { ensureSelfSigned, type SelfSignedState } from './selfsigned.js';
import { plannedRenewal } from './stored-certificate.js';
import { BaseSource, day, TlsSetupError, type CertificateSource } from './source.js';

export { TlsSetupError, type CertificateSource } from './source.js';

export interface CertificateSourceOptions {
  /** Clock for expiry decisions (tests move it forward). */
  now?: () => Date;
  /** How often the self-signed leaf is checked for renewal; default daily. */
  renewalCheckMs?: number;
  /** Quiet time after a file change before the files are read; default 500 ms. */
  watchDebounceMs?: number;
  /** Mode "acme" with challenge "http-01": who serves the key authorizations where the CA fetches them. */
  http01?: Http01Responder;
  /** Mode "acme": shorter waits for tests. */
  acme?: AcmeTiming;
}

const DAILY_MS = 86_400_000;

export async function openCertificateSource(tls: TlsConfig, logger: Logger, options: CertificateSourceOptions = {}): Promise<CertificateSource> {
  const now = options.now ?? (() => new Date());
  const log = logger.child({ component: 'tls' });
  switch (tls.mode) {
    case 'selfsigned': return SelfSignedSource.open(tls, log, now, options.renewalCheckMs ?? DAILY_MS);
    case 'files': return FileSource.open(tls, log, now, options.watchDebounceMs ?? 500);
    case 'acme': return AcmeSource.open(tls, log, { now, http01: options.http01, timing: options.acme });
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

  info(): CertificateInfo {
    return certificateInfo(this.state.leaf, plannedRenewal('selfsigned', this.state.leaf));
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

  info(): CertificateInfo {
    return certificateInfo(this.loaded.leaf);
  }

  close(): void {
    this.watch?.close();
  }
}
