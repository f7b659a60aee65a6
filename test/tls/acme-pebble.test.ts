import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { Agent, request, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { AcmeConfig, TlsConfig } from '../../src/config/agent-types.js';
import { issueCertificate } from '../../src/tls/acme/client.js';
import type { AcmeSource } from '../../src/tls/acme/source.js';
import { acmePaths } from '../../src/tls/acme/store.js';
import { openCertificateSource } from '../../src/tls/certificates.js';
import { createHttpsServer } from '../../src/tls/https-server.js';
import { captureLogs } from '../helpers/logs.js';
import { pebbleMissing, startPebble, writeChalltestsrvHook, type Pebble } from '../helpers/pebble.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

const HOST = 'home.example.com';
const FAST = { caPollMs: 100, propagationPollMs: 100, retryBaseMs: 400, random: () => 0.5 };
const skip = pebbleMissing();

/** The challtestsrv hook, logging each call and failing with a provider's message while `dir`/fail exists. */
function writeHook(dir: string, challtestsrv: string): Promise<string> {
  return writeChalltestsrvHook(dir, challtestsrv, `echo "$1 $HOMEPORT_ACME_RECORD $HOMEPORT_ACME_DOMAIN $CERTBOT_DOMAIN $CERTBOT_VALIDATION" >> "${dir}/hook.log"
if [ -e "${dir}/fail" ]; then echo "starting" >&2; echo "provider says: invalid API token" >&2; exit 3; fi
`);
}

function acmeConfig(pebble: Pebble, hook: string, extra: Partial<AcmeConfig> = {}): AcmeConfig {
  return {
    directory: pebble.directory,
    email: 'owner@example.com',
    hostnames: [HOST],
    challenge: 'dns-01',
    dnsHook: hook,
    propagationTimeoutMs: 10_000,
    nameservers: [pebble.dns],
    directoryCa: pebble.listenerCaFile,
    ...extra,
  };
}

function tlsConfig(certDir: string, acme: AcmeConfig): TlsConfig {
  return { mode: 'acme', certDir, hostnames: acme.hostnames, acme };
}

/** curl verifying the served chain against Pebble's root, as a browser would for the real name. */
async function curl(pebble: Pebble, port: number): Promise<string> {
  const { stdout } = await promisify(execFile)('curl', ['-fsS', '--cacert', pebble.rootFile, '--resolve', `${HOST}:${port}:127.0.0.1`, `https://${HOST}:${port}/`]);
  return stdout;
}

/** One request on `agent` (keep-alive), returning the serial of the certificate that socket got and whether it was reused. */
function serialVia(agent: Agent, port: number, root: string): Promise<{ serial: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, servername: HOST, ca: root, agent, path: '/' }, (res) => {
      const serial = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber;
      res.resume().on('end', () => resolve({ serial, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('mode "acme" against Pebble (loopback only)', { skip }, () => {
  let pebble: Pebble;
  let dir: string;
  let hook: string;
  before(async () => {
    // every order validated afresh, so the renewal and failure tests really run the hook
    pebble = await startPebble({ env: { PEBBLE_AUTHZREUSE: '0' } });
    dir = await mkdtemp(join(tmpdir(), 'hp-acme-'));
    hook = await writeHook(dir, pebble.challtestsrv);
  });
  after(async () => {
    await pebble?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  describe('one source through its life', () => {
    let source: AcmeSource;
    let server: Server;
    let port: number;
    const { logger, lines } = captureLogs();
    after(() => {
      server?.close();
      server?.closeAllConnections();
      source?.close();
    });

    test('issues a certificate with dns-01 through the hook; curl verifies the served chain against Pebble\'s root', async () => {
      const certDir = join(dir, 'certs');
      const started = Date.now();
      source = await openCertificateSource(tlsConfig(certDir, acmeConfig(pebble, hook)), logger, { acme: FAST }) as AcmeSource;
      assert.match(source.info().issuer, /homeport local CA/, 'a temporary self-signed certificate is served at once');
      server = createHttpsServer(source, logger, (_req, res) => res.end('hello from home\n'));
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      port = (server.address() as AddressInfo).port;
      await once(source, 'change');
      console.log(`issuance against Pebble took ${Date.now() - started} ms`);

      assert.equal(await curl(pebble, port), 'hello from home\n');
      const info = source.info();
      assert.match(info.issuer, /Pebble Intermediate CA/);
      assert.deepEqual(info.names, [HOST]);
      const notAfter = Date.parse(info.notAfter);
      assert.ok(notAfter > Date.now() && Date.parse(info.renewAt!) < notAfter, 'renewal comes before expiry');
      const hookLog = await readFile(join(dir, 'hook.log'), 'utf8');
      assert.match(hookLog, new RegExp(`^set _acme-challenge\\.${HOST}\\. ${HOST} ${HOST} \\S{43}$`, 'm'), 'the env contract, certbot names included');
      assert.match(hookLog, /^unset _acme-challenge\.home\.example\.com\. /m, 'the record is removed afterwards');
      const paths = acmePaths(certDir);
      assert.equal((await stat(paths.key)).mode & 0o777, 0o600);
      assert.equal((await stat(paths.accountKey)).mode & 0o777, 0o600);
      assert.ok(!JSON.stringify(lines).includes('PRIVATE KEY'), 'no private key in the logs');
    });

    test('a forced renewal is served to new connections while an open one keeps working', async () => {
      const kept = new Agent({ keepAlive: true, maxSockets: 1 });
      try {
        const before = await serialVia(kept, port, pebble.root);
        const changed = once(source, 'change');
        const result = await source.renew();
        assert.ok(result.ok, result.ok ? '' : result.message);
        await changed;
        const fresh = await serialVia(new Agent({ keepAlive: false }), port, pebble.root);
        assert.notEqual(fresh.serial, before.serial, 'a new connection gets the new certificate');
        const again = await serialVia(kept, port, pebble.root);
        assert.equal(again.reused, true, 'the request went over the connection opened before the swap');
        assert.equal(again.serial, before.serial, 'which still has the old certificate');
        assert.equal(await curl(pebble, port), 'hello from home\n');
      } finally {
        kept.destroy();
      }
    });

    test('a failing hook: clear error with its last stderr line, old certificate kept, retried with backoff', async () => {
      const served = source.current();
      await writeFile(join(dir, 'fail'), '');
      const result = await source.renew();
      assert.equal(result.ok, false);
      assert.match(result.ok ? '' : result.message, /^dns hook ".*dns-hook set" for _acme-challenge\.home\.example\.com\. failed with exit code 3: provider says: invalid API token$/);
      assert.equal(source.current(), served, 'the old certificate is still served');
      assert.match(source.info().lastError!, /invalid API token/);
      const logged = lines.find((line) => /certificate not renewed: dns hook/.test(line.msg));
      assert.match(logged?.msg, /still serving the certificate valid until .*; next attempt in \d+ s$/);
      await rm(join(dir, 'fail'));
      await waitFor('the scheduled retry to succeed', () => source.current() !== served, 30_000); // the retries back off 0.4, 0.8, 1.6 … s, and a loaded machine slows each attempt
      assert.equal(source.info().lastError, undefined);
    });

    test('a restart uses the stored certificate without asking the CA', async () => {
      const restarted = await openCertificateSource(tlsConfig(join(dir, 'certs'), acmeConfig(pebble, hook, { directory: 'https://127.0.0.1:1/dir' })), logger, { acme: FAST });
      try {
        assert.equal(restarted.leafFingerprint256(), source.leafFingerprint256());
      } finally {
        restarted.close();
      }
    });
  });

  test('directory unreachable → a message naming it; untrusted directory certificate → points at directoryCa', async () => {
    const { logger } = captureLogs();
    const closed = `https://127.0.0.1:${await freePort()}/dir`;
    const down = await issueCertificate({ acme: acmeConfig(pebble, hook, { directory: closed }), certDir: join(dir, 'down'), log: logger });
    assert.equal(down.ok, false);
    assert.match(down.ok ? '' : down.message, new RegExp(`^the ACME directory ${closed} is unreachable \\(ECONNREFUSED: .*\\); check tls.acme.directory`));
    const untrusted = await issueCertificate({ acme: acmeConfig(pebble, hook, { directoryCa: undefined }), certDir: join(dir, 'untrusted'), log: logger });
    assert.match(untrusted.ok ? '' : untrusted.message, /is unreachable: its HTTPS certificate is not trusted \(\w+\); for a private or test CA set tls.acme.directoryCa$/);
  });

  test('the TXT record never appears → the propagation timeout names the record and the servers asked', async () => {
    const { logger } = captureLogs();
    const silent = join(dir, 'silent-hook');
    await writeFile(silent, '#!/bin/sh\nexit 0\n');
    await chmod(silent, 0o755);
    const result = await issueCertificate({ acme: acmeConfig(pebble, silent, { propagationTimeoutMs: 500 }), certDir: join(dir, 'silent'), log: logger, timing: FAST });
    assert.match(result.ok ? '' : result.message, new RegExp(`^the TXT record _acme-challenge\\.${HOST}\\. did not appear at ${pebble.dns} within 500ms; check that the dns hook sets it`));
  });

  test('http-01 the CA cannot fetch → "could not validate" with the server\'s detail; the responder is called', async () => {
    const { logger } = captureLogs();
    const calls: string[] = [];
    const http01 = {
      async set(hostname: string, token: string) { calls.push(`set ${hostname} ${token.length}`); },
      async unset(hostname: string) { calls.push(`unset ${hostname}`); },
    };
    const result = await issueCertificate({ acme: acmeConfig(pebble, hook, { challenge: 'http-01' }), certDir: join(dir, 'http01'), http01, log: logger, timing: FAST });
    assert.match(result.ok ? '' : result.message, /^the CA could not validate the challenge: .*(refused|connect)/i);
    assert.deepEqual(calls, [`set ${HOST} 43`, `unset ${HOST}`]);
  });
});
