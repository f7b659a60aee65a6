import { readFile } from 'node:fs/promises';
import acme from 'acme-client';
import type { Logger } from '../../common/logger.js';
import { err, ok, type Result } from '../../common/result.js';
import type { AcmeConfig } from '../../config/agent-types.js';
import type { LoadedCertificate } from '../files.js';
import { createChallenger, type ChallengerTiming } from './challenges.js';
import { describeFailure, type IssueFailure } from './errors.js';
import type { Http01Responder } from './http01.js';
import { loadOrCreateAccountKey, newPrivateKey, readAccountUrl, storeAccountUrl, storeCertificate } from './store.js';
import { useDirectory } from './transport.js';

export interface IssueRequest {
  acme: AcmeConfig;
  certDir: string;
  http01?: Http01Responder;
  log: Logger;
  timing?: IssueTiming;
}

export interface IssueTiming extends ChallengerTiming {
  /** First pause while polling an order or challenge at the CA (acme-client's backoffMin); default 5 s. */
  caPollMs?: number;
}

export type IssueResult = { ok: true; value: LoadedCertificate } | ({ ok: false } & IssueFailure);

/**
 * One complete issuance with acme-client's auto(): account (registered on first use), a new key and CSR
 * for the hostnames, the challenges, the certificate stored in certDir. Never throws.
 */
export async function issueCertificate(request: IssueRequest): Promise<IssueResult> {
  const { acme: config, log } = request;
  const ca = await readDirectoryCa(config.directoryCa);
  if (!ca.ok) return { ok: false, message: ca.error };
  const lastAnswer = useDirectory(config.directory, ca.value);
  let challenged = false;
  let client: acme.Client | undefined;
  try {
    const challenger = createChallenger(config, request.http01, log, request.timing);
    const accountUrl = await readAccountUrl(request.certDir, config.directory);
    client = new acme.Client({
      directoryUrl: config.directory,
      accountKey: await loadOrCreateAccountKey(request.certDir),
      backoffMin: request.timing?.caPollMs ?? 5000,
      ...(accountUrl !== undefined && { accountUrl }),
    });
    const key = newPrivateKey();
    const [, csr] = await acme.crypto.createCsr({ altNames: config.hostnames }, key);
    const chain = await client.auto({
      csr,
      ...(config.email !== undefined && { email: config.email }),
      termsOfServiceAgreed: true,
      challengePriority: [config.challenge],
      // homeport checks the TXT record at the authoritative servers itself; acme-client's check would ask the system resolver
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        await challenger.publish(authz.identifier.value, challenge.token, keyAuthorization);
        challenged = true;
      },
      challengeRemoveFn: (authz, challenge, keyAuthorization) => challenger.withdraw(authz.identifier.value, challenge.token, keyAuthorization),
    });
    const stored = await storeCertificate(request.certDir, key, chain);
    return stored.ok ? stored : { ok: false, message: stored.error };
  } catch (error) {
    return { ok: false, ...describeFailure(error, config.directory, lastAnswer(), challenged) };
  } finally {
    await rememberAccount(client, request.certDir, config.directory);
  }
}

/**
 * Stores a newly registered account's URL, also after a failed attempt. Without it the next attempt
 * registers again, and acme-client answers "account exists" with an account update that some CAs
 * (Pebble) refuse as empty when there is no e-mail.
 */
async function rememberAccount(client: acme.Client | undefined, certDir: string, directory: string): Promise<void> {
  let url: string;
  try {
    url = client!.getAccountUrl(); // throws while no account is known
  } catch {
    return;
  }
  if (url !== await readAccountUrl(certDir, directory)) await storeAccountUrl(certDir, directory, url).catch(() => undefined);
}

async function readDirectoryCa(file: string | undefined): Promise<Result<string | undefined>> {
  if (file === undefined) return ok(undefined);
  try {
    return ok(await readFile(file, 'utf8'));
  } catch (error) {
    return err(`tls.acme.directoryCa ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}
