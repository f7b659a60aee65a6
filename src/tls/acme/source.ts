import type { Logger } from '../../common/logger.js';
import type { TlsConfig } from '../../config/agent-types.js';
import { certificateInfo, type CertificateInfo } from '../cert-info.js';
import { certificateValidity, certificateWarnings, type LoadedCertificate } from '../files.js';
import { ensureSelfSigned } from '../selfsigned.js';
import { BaseSource, day, TlsSetupError } from '../source.js';
import { missingResponder } from './challenges.js';
import { issueCertificate, type IssueResult, type IssueTiming } from './client.js';
import type { Http01Responder } from './http01.js';
import { CHECK_INTERVAL_MS, CHECK_JITTER_MS, nextCheck, renewAt, renewalDue, retryDelay, RETRY_BASE_MS } from './renewal.js';
import { readStoredCertificate } from './store.js';

type AcmeTls = Extract<TlsConfig, { mode: 'acme' }>;

/** Shorter waits for tests; every field defaults to the production value. */
export interface AcmeTiming extends IssueTiming {
  retryBaseMs?: number;
  checkIntervalMs?: number;
  checkJitterMs?: number;
  random?: () => number;
}

export interface AcmeSourceOptions {
  now: () => Date;
  http01?: Http01Responder;
  timing?: AcmeTiming;
}

/**
 * Mode "acme": serves the stored certificate while it is valid, else a temporary self-signed one while
 * the first is issued in the background (the agent must come up even when the CA or DNS is down). A
 * timer with jitter looks at the certificate and renews it once a third of its lifetime remains; a
 * failure keeps the served certificate, is logged and retried with backoff. A new certificate is
 * announced with 'change': new connections get it, open ones keep theirs.
 */
export class AcmeSource extends BaseSource {
  /** The CA's certificate being served; undefined while the temporary self-signed one is. */
  private issued: LoadedCertificate | undefined;
  private failures = 0;
  private lastError: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempt: Promise<IssueResult> | undefined;
  private closed = false;

  static async open(tls: AcmeTls, log: Logger, options: AcmeSourceOptions): Promise<AcmeSource> {
    const missing = missingResponder(tls.acme, options.http01);
    if (missing !== undefined) throw new TlsSetupError(missing);
    const stored = await readStoredCertificate(tls.certDir);
    if (!stored.ok) log.warn(`${stored.error}; issuing a new certificate`);
    const usable = stored.ok && stored.value !== undefined && isUsable(stored.value, tls, options.now()) ? stored.value : undefined;
    const serving = usable ?? await temporary(tls, log, options.now());
    const source = new AcmeSource(tls, serving, usable, log, options);
    if (usable === undefined || renewalDue(certificateValidity(usable.leaf), options.now())) void source.renew();
    else source.scheduleCheck();
    return source;
  }

  private constructor(
    private readonly tls: AcmeTls,
    serving: LoadedCertificate,
    issued: LoadedCertificate | undefined,
    log: Logger,
    private readonly options: AcmeSourceOptions,
  ) {
    super(serving, log);
    this.issued = issued;
  }

  /**
   * Issues a certificate now, whatever the schedule says (tests, a future `homeport cert renew`). An
   * attempt already under way is joined, not doubled.
   */
  renew(): Promise<IssueResult> {
    this.attempt ??= this.issue().finally(() => {
      this.attempt = undefined;
    });
    return this.attempt;
  }

  private async issue(): Promise<IssueResult> {
    clearTimeout(this.timer);
    this.log.info({ hostnames: this.tls.hostnames, directory: this.tls.acme.directory }, 'requesting a certificate from the ACME CA');
    const started = Date.now();
    const result = await issueCertificate({ acme: this.tls.acme, certDir: this.tls.certDir, http01: this.options.http01, log: this.log, timing: this.options.timing });
    if (this.closed) return result;
    if (result.ok) this.succeeded(result.value, Date.now() - started);
    else this.failed(result.message, result.retryAfterMs);
    return result;
  }

  private succeeded(loaded: LoadedCertificate, tookMs: number): void {
    this.issued = loaded;
    this.failures = 0;
    this.lastError = undefined;
    this.log.info({ validTo: loaded.leaf.validTo, issuer: loaded.leaf.issuer, tookMs }, 'the ACME CA issued a certificate');
    this.replace(loaded);
    this.scheduleCheck();
  }

  private failed(message: string, retryAfterMs: number | undefined): void {
    this.failures += 1;
    this.lastError = message;
    const timing = this.options.timing ?? {};
    const delay = retryDelay(this.failures, retryAfterMs, timing.random, timing.retryBaseMs ?? RETRY_BASE_MS);
    const keeping = this.issued ? `still serving the certificate valid until ${this.issued.leaf.validTo}` : 'still serving the temporary self-signed certificate';
    this.log.error({ failures: this.failures, retryInMs: delay }, `certificate not renewed: ${message}; ${keeping}; next attempt in ${Math.round(delay / 1000)} s`);
    this.schedule(delay, () => void this.renew());
  }

  /** The next regular look: renews when due, else looks again later. */
  private scheduleCheck(): void {
    const { now, timing = {} } = this.options;
    const at = nextCheck(certificateValidity(this.issued!.leaf), now(), timing.random, timing.checkIntervalMs ?? CHECK_INTERVAL_MS, timing.checkJitterMs ?? CHECK_JITTER_MS);
    this.schedule(at.getTime() - now().getTime(), () => {
      if (this.issued && !renewalDue(certificateValidity(this.issued.leaf), now())) this.scheduleCheck();
      else void this.renew();
    });
  }

  private schedule(delayMs: number, run: () => void): void {
    clearTimeout(this.timer);
    if (this.closed) return;
    this.timer = setTimeout(run, Math.max(0, delayMs));
    this.timer.unref();
  }

  /** SIGHUP: a certificate put into certDir by hand (a restored backup) is picked up when it is usable. */
  protected async refresh(): Promise<void> {
    const stored = await readStoredCertificate(this.tls.certDir);
    if (!stored.ok) throw new Error(stored.error);
    if (stored.value === undefined || !isUsable(stored.value, this.tls, this.options.now())) return;
    this.issued = stored.value;
    this.replace(stored.value);
  }

  describe(): string[] {
    const served = this.issued
      ? `certificate for ${this.tls.hostnames.join(', ')} from ${this.tls.acme.directory}, valid until ${day(this.issued.leaf)}`
      : `temporary self-signed certificate for ${this.tls.hostnames.join(', ')} until ${this.tls.acme.directory} issues one`;
    return [`TLS: ${served}; renewed automatically (${this.tls.acme.challenge})`];
  }

  info(): CertificateInfo {
    const renewal = this.issued ? renewAt(certificateValidity(this.issued.leaf)) : this.options.now();
    return certificateInfo(this.loaded.leaf, renewal, this.lastError);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}

/** A stored certificate worth serving: current, and covering every configured name. */
function isUsable(loaded: LoadedCertificate, tls: AcmeTls, now: Date): boolean {
  return certificateWarnings(loaded.leaf, tls.hostnames, now).length === 0;
}

async function temporary(tls: AcmeTls, log: Logger, now: Date): Promise<LoadedCertificate> {
  log.warn('no certificate from the ACME CA yet: serving a temporary self-signed one while it is issued');
  return ensureSelfSigned(tls.certDir, tls.hostnames, now).catch((error: Error) => {
    throw new TlsSetupError(error.message);
  });
}
