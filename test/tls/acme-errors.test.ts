import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChallengeSetupError } from '../../src/tls/acme/challenges.js';
import { describeFailure } from '../../src/tls/acme/errors.js';
import { openCertificateSource, TlsSetupError } from '../../src/tls/certificates.js';
import { captureLogs } from '../helpers/logs.js';

const DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';
const ORDER = 'https://acme-v02.api.letsencrypt.org/acme/new-order';

test('what acme-client threw, with the CA\'s last answer, becomes one line a user can act on', () => {
  const cases: Array<{ name: string; error: unknown; answer?: Parameters<typeof describeFailure>[2]; challenged?: boolean; message: RegExp; retryAfterMs?: number }> = [
    {
      name: 'rate limited, with Retry-After',
      error: new Error('too many certificates (5) already issued for this exact set of identifiers'),
      answer: { url: ORDER, status: 429, type: 'rateLimited', detail: 'too many certificates (5) already issued for this exact set of identifiers', retryAfterMs: 3_600_000 },
      message: /^rate limited by the CA: too many certificates \(5\) already issued for this exact set of identifiers; the CA allows the next attempt at \d{4}-/,
      retryAfterMs: 3_600_000,
    },
    {
      name: 'server error',
      error: new Error('boom'),
      answer: { url: ORDER, status: 503, type: 'serverInternal', detail: 'the service is down for maintenance' },
      message: /^the CA had a server error \(HTTP 503\): the service is down for maintenance; retrying later$/,
    },
    {
      name: 'refused identifier',
      error: new Error('x'),
      answer: { url: ORDER, status: 400, type: 'rejectedIdentifier', detail: 'Invalid identifiers requested :: Cannot issue for "home.local"' },
      message: /^the CA refused the request \(rejectedIdentifier\): Invalid identifiers requested/,
    },
    {
      name: 'directory URL wrong',
      error: new Error('Attempting to read ACME directory returned error 404'),
      answer: { url: DIRECTORY, status: 404 },
      message: /^the ACME directory https:\/\/acme-v02\.api\.letsencrypt\.org\/directory answered HTTP 404; check tls\.acme\.directory$/,
    },
    {
      name: 'challenge invalid, with the server\'s detail',
      error: new Error('DNS problem: NXDOMAIN looking up TXT for _acme-challenge.home.example.com'),
      challenged: true,
      message: /^the CA could not validate the challenge: DNS problem: NXDOMAIN looking up TXT/,
    },
    {
      name: 'name does not resolve',
      error: Object.assign(new Error('getaddrinfo ENOTFOUND acme-v02.api.letsencrypt.org'), { code: 'ENOTFOUND' }),
      message: /^the ACME directory .* is unreachable \(ENOTFOUND: getaddrinfo ENOTFOUND .*\); check tls\.acme\.directory and this machine's internet connection$/,
    },
    { name: 'our own hook', error: new ChallengeSetupError('dns hook "/h set" failed'), message: /^dns hook "\/h set" failed$/ },
  ];
  for (const { name, error, answer, challenged = false, message, retryAfterMs } of cases) {
    const failure = describeFailure(error, DIRECTORY, answer, challenged);
    assert.match(failure.message, message, name);
    assert.equal(failure.message.includes('\n'), false, name);
    assert.equal(failure.retryAfterMs, retryAfterMs, name);
  }
});

test('mode "acme" with http-01 but no responder refuses to start, saying what to do', async () => {
  const acme = { directory: DIRECTORY, hostnames: ['home.example.com'], challenge: 'http-01' as const, propagationTimeoutMs: 1000 };
  await assert.rejects(
    openCertificateSource({ mode: 'acme', certDir: '/nonexistent/certs', hostnames: acme.hostnames, acme }, captureLogs().logger),
    (error: Error) => error instanceof TlsSetupError && /^tls\.acme\.challenge = "http-01" needs a way to answer the CA on port 80, which this program was not given; use challenge = "dns-01"$/.test(error.message),
  );
});
