import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureSelfSigned } from '../../src/tls/selfsigned.js';
import { freePort } from './ports.js';
import { missingTool } from './tools.js';
import { waitFor } from './wait.js';

/**
 * Pebble (Let's Encrypt's test CA) with pebble-challtestsrv as its only DNS server, both on loopback only:
 * Pebble validates for real, but every name it looks up is answered by challtestsrv, so nothing leaves
 * this machine. The Debian package ships no certificates, so the listener's certificate is made here.
 */
export interface Pebble {
  /** https://127.0.0.1:<port>/dir */
  directory: string;
  /** PEM of the CA that signed Pebble's listener certificate: tls.acme.directoryCa. */
  listenerCaFile: string;
  /** PEM of the root Pebble issues under (management /roots/0); regenerated on every start. */
  root: string;
  rootFile: string;
  /** challtestsrv's DNS server, "127.0.0.1:<port>": tls.acme.nameservers. */
  dns: string;
  /** challtestsrv's management API, http://127.0.0.1:<port>. */
  challtestsrv: string;
  dir: string;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** Port Pebble connects to for HTTP-01 validation (on the address challtestsrv answers: 127.0.0.1). */
  httpPort?: number;
  /** Extra environment, e.g. { PEBBLE_WFE_NONCEREJECT: '30' }. */
  env?: Record<string, string>;
}

/** Why the Pebble tests must skip, or undefined; under CI=true a missing pebble fails instead. */
export function pebbleMissing(): string | undefined {
  return missingTool('pebble') ?? missingTool('pebble-challtestsrv');
}

export async function startPebble(options: PebbleOptions = {}): Promise<Pebble> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-pebble-'));
  const listener = await ensureSelfSigned(join(dir, 'listener'), ['localhost', '127.0.0.1'], new Date());
  const [port, managementPort, tlsPort, dnsPort, challManagementPort, httpPort] = await Promise.all([
    freePort(), freePort(), freePort(), freePort(), freePort(), options.httpPort ?? freePort(),
  ]);
  const configFile = join(dir, 'pebble-config.json');
  await writeFile(configFile, JSON.stringify({
    pebble: {
      listenAddress: `127.0.0.1:${port}`,
      managementListenAddress: `127.0.0.1:${managementPort}`,
      certificate: listener.paths.cert,
      privateKey: listener.paths.key,
      httpPort,
      tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  }));
  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(stopChild));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    children.push(launch('pebble-challtestsrv', [
      '-dns01', `127.0.0.1:${dnsPort}`, '-management', `127.0.0.1:${challManagementPort}`,
      '-http01', '', '-https01', '', '-tlsalpn01', '', '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
    ], {}));
    children.push(launch('pebble', ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`], { PEBBLE_VA_NOSLEEP: '1', ...options.env }));
    const ca = listener.ca.toString();
    const challtestsrv = `http://127.0.0.1:${challManagementPort}`;
    await waitFor('pebble-challtestsrv to answer', () => answers(`${challtestsrv}/`), 10_000);
    await waitFor('pebble to serve its directory', () => get(`https://127.0.0.1:${port}/dir`, ca).then(() => true, () => false), 10_000);
    const root = await get(`https://127.0.0.1:${managementPort}/roots/0`, ca);
    const rootFile = join(dir, 'pebble-root.pem');
    await writeFile(rootFile, root);
    return { directory: `https://127.0.0.1:${port}/dir`, listenerCaFile: listener.paths.caCert, root, rootFile, dns: `127.0.0.1:${dnsPort}`, challtestsrv, dir, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function launch(command: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr!.resume(); // both log to stderr; an unread pipe would block them once full
  child.on('error', () => undefined); // a program that cannot start shows as the readiness wait timing out
  return child;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

/** Whether anything answers HTTP at `url`, whatever the status. */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    httpRequest(url, { agent: false }, (res) => resolve(res.resume() !== undefined)).on('error', () => resolve(false)).end();
  });
}

/** GET a body as text; rejects unless 200. `ca` set means https trusting only that CA. */
export function get(url: string, ca?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const options = ca === undefined ? {} : { ca };
    const req = (ca === undefined ? httpRequest : httpsRequest)(url, { ...options, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => (res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * A DNS hook as a NAS owner would write it, setting and clearing the TXT record at challtestsrv instead of a
 * DNS provider's API. `prelude`: shell lines run first (a test's logging or failure switch).
 */
export async function writeChalltestsrvHook(dir: string, challtestsrv: string, prelude = ''): Promise<string> {
  const hook = join(dir, 'dns-hook');
  await writeFile(hook, `#!/bin/sh
${prelude}case "$1" in
  set) curl -fsS -d "{\\"host\\":\\"$HOMEPORT_ACME_RECORD\\",\\"value\\":\\"$HOMEPORT_ACME_VALUE\\"}" "${challtestsrv}/set-txt" ;;
  unset) curl -fsS -d "{\\"host\\":\\"$HOMEPORT_ACME_RECORD\\"}" "${challtestsrv}/clear-txt" ;;
esac
`);
  await chmod(hook, 0o755);
  return hook;
}
