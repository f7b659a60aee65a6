import { execFile, type ExecFileException } from 'node:child_process';
import { err, ok, type Result } from '../../common/result.js';

/** One TXT record a dns-01 challenge needs. */
export interface DnsRecord {
  /** "home.example.com" (a wildcard's "*." removed: its record sits at the base name). */
  domain: string;
  /** "_acme-challenge.home.example.com." */
  name: string;
  value: string;
}

export const DEFAULT_HOOK_TIMEOUT_MS = 120_000;

export function challengeRecord(identifier: string, value: string): DnsRecord {
  const domain = identifier.replace(/^\*\./, '');
  return { domain, name: `_acme-challenge.${domain}.`, value };
}

/**
 * Runs the user's DNS hook as `hook set|unset` with the record in the environment: HOMEPORT_ACME_* and
 * certbot's CERTBOT_DOMAIN / CERTBOT_VALIDATION, so an existing certbot manual hook works unchanged.
 * A non-zero exit or a timeout becomes an error ending with the last line the hook wrote to stderr.
 */
export function runDnsHook(hook: string, action: 'set' | 'unset', record: DnsRecord, timeoutMs = DEFAULT_HOOK_TIMEOUT_MS): Promise<Result<void>> {
  const env = {
    ...process.env,
    HOMEPORT_ACME_RECORD: record.name,
    HOMEPORT_ACME_VALUE: record.value,
    HOMEPORT_ACME_DOMAIN: record.domain,
    CERTBOT_DOMAIN: record.domain,
    CERTBOT_VALIDATION: record.value,
  };
  return new Promise((resolve) => {
    execFile(hook, [action], { env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 1 << 20 }, (error, _stdout, stderr) => {
      if (!error) return resolve(ok(undefined));
      resolve(err(`dns hook "${hook} ${action}" for ${record.name} ${hookFailure(error, timeoutMs)}${lastLine(stderr)}`));
    });
  });
}

function hookFailure(error: ExecFileException, timeoutMs: number): string {
  if (error.killed) return `did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped`;
  if (error.code === 'ENOENT') return 'cannot run: the file does not exist; check tls.acme.dnsHook';
  if (error.code === 'EACCES') return 'cannot run: it is not executable; chmod +x it';
  return `failed with exit code ${String(error.code)}`;
}

function lastLine(stderr: string): string {
  const line = stderr.trim().split('\n').at(-1)?.trim();
  return line ? `: ${line}` : '';
}
