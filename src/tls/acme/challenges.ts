import type { Logger } from '../../common/logger.js';
import type { AcmeConfig } from '../../config/agent-types.js';
import { challengeRecord, runDnsHook, type DnsRecord } from './dns-hook.js';
import type { Http01Responder } from './http01.js';
import { waitForTxt } from './propagation.js';

/** A failure on homeport's side of a challenge (hook, DNS, responder): its message is already the whole story. */
export class ChallengeSetupError extends Error {
  override name = 'ChallengeSetupError';
}

/** Publishes and withdraws one challenge's proof; what acme-client's auto() calls. */
export interface Challenger {
  /** `identifier` is the authorization's name ("example.com" also for "*.example.com"). */
  publish(identifier: string, token: string, keyAuthorization: string): Promise<void>;
  withdraw(identifier: string, token: string, keyAuthorization: string): Promise<void>;
}

export interface ChallengerTiming {
  /** Pause between TXT lookups while waiting for propagation. */
  propagationPollMs?: number;
}

/** Why `acme` cannot be served by this program, or undefined. */
export function missingResponder(acme: AcmeConfig, http01: Http01Responder | undefined): string | undefined {
  if (acme.challenge !== 'http-01' || http01 !== undefined) return undefined;
  return 'tls.acme.challenge = "http-01" needs a way to answer the CA on port 80, which this program was not given; use challenge = "dns-01"';
}

export function createChallenger(acme: AcmeConfig, http01: Http01Responder | undefined, log: Logger, timing: ChallengerTiming = {}): Challenger {
  const missing = missingResponder(acme, http01);
  if (missing !== undefined) throw new ChallengeSetupError(missing);
  if (http01 !== undefined && acme.challenge === 'http-01') return http01Challenger(http01);
  return dnsChallenger(acme, log, timing);
}

function http01Challenger(responder: Http01Responder): Challenger {
  return {
    async publish(identifier, token, keyAuthorization) {
      await responder.set(identifier, token, keyAuthorization).catch((error: Error) => {
        throw new ChallengeSetupError(`cannot publish the http-01 challenge for ${identifier}: ${error.message}`);
      });
    },
    withdraw: (identifier, token) => responder.unset(identifier, token),
  };
}

function dnsChallenger(acme: AcmeConfig, log: Logger, timing: ChallengerTiming): Challenger {
  const hook = acme.dnsHook!; // the config requires it for dns-01
  return {
    async publish(identifier, _token, value) {
      const record = challengeRecord(identifier, value);
      await required(runDnsHook(hook, 'set', record));
      log.info({ record: record.name }, 'dns hook set the TXT record; waiting until the authoritative servers serve it');
      await required(waitForTxt(record, { timeoutMs: acme.propagationTimeoutMs, nameservers: acme.nameservers, pollMs: timing.propagationPollMs }));
    },
    async withdraw(identifier, _token, value) {
      const record: DnsRecord = challengeRecord(identifier, value);
      const result = await runDnsHook(hook, 'unset', record);
      // a leftover TXT record harms nothing; the certificate matters more
      if (!result.ok) log.warn(`${result.error}; remove the record by hand`);
    },
  };
}

async function required(pending: Promise<{ ok: true } | { ok: false; error: string }>): Promise<void> {
  const result = await pending;
  if (!result.ok) throw new ChallengeSetupError(result.error);
}
