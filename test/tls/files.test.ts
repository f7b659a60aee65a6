import assert from 'node:assert/strict';
import { captureLogs } from '../helpers/logs.js';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { pino } from 'pino';
import { generate } from 'selfsigned';
import { TlsSetupError, openCertificateSource, type CertificateSource } from '../../src/tls/certificates.js';
import { certificateWarnings } from '../../src/tls/files.js';
import { TLS_SERVER_OPTIONS, createSecureContext } from '../../src/tls/server-options.js';

const DAY_MS = 86_400_000;
type Pems = { key: string; cert: string };

async function issue(commonName: string, options: { ca?: Pems; notAfterDate?: Date } = {}): Promise<Pems> {
  const pems = await generate([{ name: 'commonName', value: commonName }], { keyType: 'ec', algorithm: 'sha256', ...options });
  return { key: pems.private, cert: pems.cert };
}

const scratch: string[] = [];
after(() => Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true }))));

/** A directory with cert.pem and key.pem holding `pems`, and the matching `tls` config. */
async function filesConfig(pems: Pems) {
  const dir = await mkdtemp(join(tmpdir(), 'homeport-files-'));
  scratch.push(dir);
  const tls = { mode: 'files' as const, certDir: dir, hostnames: ['first.example.test'], certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
  await writeFile(tls.certFile, pems.cert);
  await writeFile(tls.keyFile, pems.key, { mode: 0o600 });
  return tls;
}

/** Replaces a file the way editors and certbot do: write elsewhere, rename over it. */
async function replaceFile(file: string, text: string): Promise<void> {
  await writeFile(`${file}.new`, text);
  await rename(`${file}.new`, file);
}

/** An echo server wired like the agent: per-socket SecureContext, swapped when the source changes. */
async function echoServer(source: CertificateSource): Promise<{ port: number; close(): void }> {
  let secureContext = createSecureContext(source.current());
  source.on('change', () => {
    secureContext = createSecureContext(source.current());
  });
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const secure = new tls.TLSSocket(socket, { ...TLS_SERVER_OPTIONS, isServer: true, secureContext });
    secure.on('error', () => socket.destroy());
    secure.pipe(secure);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

async function connect(port: number): Promise<{ socket: tls.TLSSocket; fingerprint: string }> {
  const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
  await once(socket, 'secureConnect');
  return { socket, fingerprint: socket.getPeerCertificate().fingerprint256 };
}

async function echo(socket: tls.TLSSocket, text: string): Promise<string> {
  socket.write(text);
  const [data] = await once(socket, 'data');
  return (data as Buffer).toString();
}

/** Resolves on the next 'change'; the timer holds the event loop open, as the agent's server would. */
function nextChange(source: CertificateSource, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no 'change' within ${timeoutMs} ms`)), timeoutMs);
    source.on('change', () => resolve(clearTimeout(timer)));
  });
}

describe('certificate files', () => {
  let first: Pems;
  let second: Pems;
  before(async () => {
    [first, second] = await Promise.all([issue('first.example.test'), issue('second.example.test')]);
  });

  test('serves the configured files and describes them', async () => {
    const config = await filesConfig(first);
    const source = await openCertificateSource(config, pino({ level: 'silent' }));
    const server = await echoServer(source);
    try {
      const { socket, fingerprint } = await connect(server.port);
      socket.destroy();
      assert.equal(fingerprint, new X509Certificate(first.cert).fingerprint256);
      assert.equal(source.leafFingerprint256(), fingerprint);
      const lines = source.describe().join('\n');
      assert.ok(lines.includes(config.certFile) && lines.includes('first.example.test'), lines);
    } finally {
      server.close();
      source.close();
    }
  });

  test('reload() after replacing the files serves the new certificate to new connections; open ones keep working', async () => {
    const config = await filesConfig(first);
    const source = await openCertificateSource(config, pino({ level: 'silent' }), { watchDebounceMs: 60_000 });
    const server = await echoServer(source);
    try {
      const open = await connect(server.port);
      await replaceFile(config.keyFile, second.key);
      await replaceFile(config.certFile, second.cert);
      const changed = nextChange(source);
      await source.reload(); // what SIGHUP does
      await changed;
      const fresh = await connect(server.port);
      fresh.socket.destroy();
      assert.equal(fresh.fingerprint, new X509Certificate(second.cert).fingerprint256);
      assert.equal(source.leafFingerprint256(), fresh.fingerprint);
      assert.equal(await echo(open.socket, 'still here'), 'still here');
      assert.equal(open.fingerprint, new X509Certificate(first.cert).fingerprint256);
      open.socket.destroy();
    } finally {
      server.close();
      source.close();
    }
  });

  test('a change on disk is picked up without a signal', async () => {
    const config = await filesConfig(first);
    const source = await openCertificateSource(config, pino({ level: 'silent' }), { watchDebounceMs: 50 });
    try {
      const changed = nextChange(source);
      await replaceFile(config.keyFile, second.key);
      await replaceFile(config.certFile, second.cert);
      await changed;
      assert.equal(source.leafFingerprint256(), new X509Certificate(second.cert).fingerprint256);
    } finally {
      source.close();
    }
  });

  test('a bad new file is logged and the previous certificate kept', async () => {
    const config = await filesConfig(first);
    const { logger, lines } = captureLogs('info');
    const source = await openCertificateSource(config, logger, { watchDebounceMs: 60_000 });
    const original = source.current();
    let changes = 0;
    source.on('change', () => changes++);
    try {
      await replaceFile(config.certFile, 'oops, not a certificate');
      await source.reload();
      await replaceFile(config.certFile, second.cert); // new certificate, old key
      await source.reload();
      assert.equal(changes, 0);
      assert.equal(source.current(), original);
      assert.equal(source.leafFingerprint256(), new X509Certificate(first.cert).fingerprint256);
      const errors = lines.filter((line) => line.level === 50).map((line) => line.msg);
      assert.equal(errors.length, 2, JSON.stringify(lines));
      assert.match(errors[0]!, new RegExp(`still serving the previous one: ${config.certFile}: no PEM certificate found`));
      assert.match(errors[1]!, new RegExp(`${config.keyFile}: the private key does not belong to the certificate`));
    } finally {
      source.close();
    }
  });
});

describe('certificate file errors at start', () => {
  const cases: Array<{ name: string; files: () => Promise<Pems>; message: (config: { certFile: string; keyFile: string }) => RegExp }> = [
    {
      name: 'certificate is not PEM',
      files: async () => ({ ...(await issue('a.example.test')), cert: 'garbage' }),
      message: (c) => new RegExp(`^${c.certFile}: no PEM certificate found.*openssl x509 -inform der`),
    },
    {
      name: 'certificate is damaged',
      files: async () => {
        const pems = await issue('a.example.test');
        return { ...pems, cert: pems.cert.replace(/\n[A-Za-z0-9+/]{20}/, '\nAAAAAAAAAAAAAAAAAAAA') };
      },
      message: (c) => new RegExp(`^${c.certFile}: certificate #1 is damaged`),
    },
    {
      name: 'key is not PEM',
      files: async () => ({ ...(await issue('a.example.test')), key: 'garbage' }),
      message: (c) => new RegExp(`^${c.keyFile}: no PEM private key found.*tls\\.keyFile`),
    },
    {
      name: 'key is encrypted',
      files: async () => {
        const pems = await issue('a.example.test');
        const key = createPrivateKey(pems.key).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' });
        return { ...pems, key: key.toString() };
      },
      message: (c) => new RegExp(`^${c.keyFile}: the private key is encrypted.*openssl pkey`),
    },
    {
      name: 'key belongs to another certificate',
      files: async () => ({ cert: (await issue('a.example.test')).cert, key: (await issue('b.example.test')).key }),
      message: (c) => new RegExp(`^${c.keyFile}: the private key does not belong to the certificate in ${c.certFile}`),
    },
    {
      name: 'chain in the wrong order',
      files: async () => {
        const ca = await generate([{ name: 'commonName', value: 'Test CA' }], { keyType: 'ec', algorithm: 'sha256', extensions: [{ name: 'basicConstraints', cA: true }] });
        const leaf = await issue('a.example.test', { ca: { key: ca.private, cert: ca.cert } });
        return { cert: ca.cert + leaf.cert, key: leaf.key };
      },
      message: (c) => new RegExp(`^${c.certFile}: the server certificate must come first.*certificate #2`),
    },
  ];

  for (const { name, files, message } of cases) {
    test(name, async () => {
      const config = await filesConfig(await files());
      await assert.rejects(openCertificateSource(config, pino({ level: 'silent' })), (error: Error) => {
        assert.ok(error instanceof TlsSetupError);
        assert.match(error.message, message(config));
        return true;
      });
    });
  }

  test('missing file names the config key', async () => {
    const config = { ...(await filesConfig(await issue('a.example.test'))), certFile: '/nonexistent/homeport/cert.pem' };
    await assert.rejects(openCertificateSource(config, pino({ level: 'silent' })), /^TlsSetupError: \/nonexistent\/homeport\/cert\.pem: cannot be read \(ENOENT\); check tls\.certFile$/);
  });
});

describe('certificate warnings', () => {
  test('expired, not yet valid, and hostnames the certificate does not cover', async () => {
    const pems = await generate([{ name: 'commonName', value: 'nas.example.test' }], {
      keyType: 'ec',
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: '*.example.test' }, { type: 7, ip: '192.0.2.1' }] }],
    });
    const leaf = new X509Certificate(pems.cert);
    const now = new Date();
    assert.deepEqual(certificateWarnings(leaf, ['nas.example.test', '*.example.test', '192.0.2.1'], now), []);
    assert.deepEqual(certificateWarnings(leaf, ['a.b.example.test', '192.0.2.2', 'example.test'], now), [
      'the certificate does not cover tls.hostnames a.b.example.test, 192.0.2.2, example.test; clients using those names will refuse it',
    ]);
    assert.match(certificateWarnings(leaf, [], new Date(now.getTime() + 400 * DAY_MS)).join(), /^the certificate expired on /);
    assert.match(certificateWarnings(leaf, [], new Date(now.getTime() - DAY_MS)).join(), /^the certificate is not valid before /);
  });
});
