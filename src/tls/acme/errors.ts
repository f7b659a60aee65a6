import { ChallengeSetupError } from './challenges.js';
import type { Answer } from './transport.js';

/** Why an issuance failed, in one line, and how long the CA asked us to wait. */
export interface IssueFailure {
  message: string;
  retryAfterMs?: number;
}

const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Turns what acme-client threw into a message a user can act on. acme-client's errors carry only the
 * server's detail text, so the CA's last answer (status, problem type, Retry-After) comes from the
 * transport; `challenged` tells whether the CA was already checking a published challenge.
 */
export function describeFailure(error: unknown, directory: string, answer: Answer | undefined, challenged: boolean): IssueFailure {
  if (error instanceof ChallengeSetupError) return { message: error.message };
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === 'string' ? message.replaceAll('\n', ' ') : String(error);
  if (answer === undefined && typeof code === 'string') return { message: unreachable(directory, code, text) };
  if (answer !== undefined) return refused(directory, answer, text);
  if (challenged) return { message: `the CA could not validate the challenge: ${text}` };
  return { message: `certificate issuance failed: ${text}` };
}

function unreachable(directory: string, code: string, text: string): string {
  if (UNTRUSTED_CERTIFICATE.has(code)) {
    return `the ACME directory ${directory} is unreachable: its HTTPS certificate is not trusted (${code}); for a private or test CA set tls.acme.directoryCa`;
  }
  return `the ACME directory ${directory} is unreachable (${code}: ${text}); check tls.acme.directory and this machine's internet connection`;
}

function refused(directory: string, answer: Answer, text: string): IssueFailure {
  const detail = answer.detail ?? text;
  const retry = answer.retryAfterMs !== undefined ? { retryAfterMs: answer.retryAfterMs } : {};
  if (answer.status === 429 || answer.type === 'rateLimited') {
    const when = answer.retryAfterMs !== undefined ? `the CA allows the next attempt at ${new Date(Date.now() + answer.retryAfterMs).toISOString()}` : 'retrying with backoff';
    return { message: `rate limited by the CA: ${detail}; ${when}`, ...retry };
  }
  if (answer.url === directory) return { message: `the ACME directory ${directory} answered HTTP ${answer.status}; check tls.acme.directory` };
  if (answer.status >= 500) return { message: `the CA had a server error (HTTP ${answer.status}): ${detail}; retrying later`, ...retry };
  return { message: `the CA refused the request (${answer.type ?? `HTTP ${answer.status}`}): ${detail}`, ...retry };
}
