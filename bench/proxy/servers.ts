/**
 * The servers of the benchmark: the nginx upstream and the three TLS proxies in front of it. Config
 * rendering is pure (one function per server); starting goes through processes.ts so every server is
 * stopped at the end. Everything listens on 127.0.0.1 only.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CertificateFiles } from './fixtures.js';
import { freePort, spawnTracked, stopTracked, waitForPort } from './processes.js';

export const PROXY_NAMES = ['homeport', 'nginx', 'caddy'] as const;
export type ProxyName = (typeof PROXY_NAMES)[number];

/** dist/bench/proxy/servers.js → the repository root, where dist/src/cli/main.js lives. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const HOMEPORT_CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

export interface RunContext {
  /** This run's temporary folder: configs, pid files, logs. */
  runDir: string;
  /** Where the static files are (shared across runs). */
  filesDir: string;
  cert: CertificateFiles;
}

export interface RunningServer {
  name: string;
  pid: number;
  port: number;
  /** Base URL without a trailing slash, e.g. https://127.0.0.1:40123 */
  url: string;
  /** How it is set up, for the results file (logging, buffering). */
  setup: string;
  stop(): Promise<void>;
}

interface NginxMainOptions {
  runDir: string;
  name: string;
  /** Workers run as the user nginx starts as; as root they would drop to "nobody", who cannot read the temp folder. */
  asRoot: boolean;
}

/** The parts both nginx instances share: own pid, logs and temp paths inside the run folder. */
function renderNginxMain({ runDir, name, asRoot }: NginxMainOptions, http: string[]): string {
  const temp = (kind: string) => `${kind}_temp_path ${join(runDir, `${name}-${kind}-temp`)};`;
  return [
    ...(asRoot ? ['user root;'] : []),
    'worker_processes auto;',
    `pid ${join(runDir, `${name}.pid`)};`,
    `error_log ${join(runDir, `${name}-error.log`)} warn;`,
    'events { worker_connections 4096; }',
    'http {',
    ...[
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp),
      'default_type application/octet-stream;',
      // A proxy pools its upstream connections; nginx's default of 1000 requests would make it reconnect.
      'keepalive_requests 1000000;',
      ...http,
    ].map((line) => `  ${line}`),
    '}',
    '',
  ].join('\n');
}

export function renderUpstreamNginx(options: NginxMainOptions & { port: number; filesDir: string }): string {
  return renderNginxMain(options, [
    'access_log off;',
    'sendfile on;',
    'tcp_nopush on;',
    `server { listen 127.0.0.1:${options.port}; root ${options.filesDir}; }`,
  ]);
}

export const NGINX_PROXY_SETUP =
  'TLS 1.2/1.3, upstream keepalive 64, proxy_buffering on (64k + 8x256k buffers, no temp file), access_log buffered to a file';

export function renderNginxProxy(
  options: NginxMainOptions & { port: number; upstreamPort: number; cert: CertificateFiles },
): string {
  return renderNginxMain(options, [
    `access_log ${join(options.runDir, `${options.name}-access.log`)} combined buffer=256k flush=1s;`,
    'ssl_protocols TLSv1.2 TLSv1.3;',
    'ssl_session_cache shared:SSL:10m;',
    `upstream lan { server 127.0.0.1:${options.upstreamPort}; keepalive 64; keepalive_requests 1000000; }`,
    'server {',
    `  listen 127.0.0.1:${options.port} ssl;`,
    `  ssl_certificate ${options.cert.certFile};`,
    `  ssl_certificate_key ${options.cert.keyFile};`,
    '  location / {',
    '    proxy_pass http://lan;',
    '    proxy_http_version 1.1;',
    '    proxy_set_header Connection "";',
    '    proxy_set_header Host $host;',
    '    proxy_set_header X-Forwarded-For $remote_addr;',
    '    proxy_set_header X-Forwarded-Proto $scheme;',
    '    proxy_buffering on;',
    '    proxy_buffer_size 64k;',
    '    proxy_buffers 8 256k;',
    '    proxy_busy_buffers_size 512k;',
    // Without this nginx spools a fast upstream's 1 GiB response to disk first.
    '    proxy_max_temp_file_size 0;',
    '  }',
    '}',
  ]);
}

export const CADDY_SETUP = 'reverse_proxy, upstream keep-alive pool of 64 (default 32), h1 only (as the others), no access log (Caddy default)';

/** No admin endpoint, no automatic HTTPS, no OCSP: Caddy must not try to reach anything outside loopback. */
export function renderCaddyfile(options: { port: number; upstreamPort: number; cert: CertificateFiles }): string {
  return [
    '{',
    '\tadmin off',
    '\tauto_https off',
    '\tocsp_stapling off',
    '\tgrace_period 1s',
    '\tservers {',
    '\t\tprotocols h1',
    '\t}',
    '}',
    `https://:${options.port} {`,
    '\tbind 127.0.0.1',
    `\ttls ${options.cert.certFile} ${options.cert.keyFile}`,
    `\treverse_proxy 127.0.0.1:${options.upstreamPort} {`,
    // Caddy keeps 32 idle upstream connections per host by default; wrk's 50 would churn the rest.
    '\t\ttransport http {',
    '\t\t\tkeepalive_idle_conns 256',
    '\t\t\tkeepalive_idle_conns_per_host 64',
    '\t\t}',
    '\t}',
    '}',
    '',
  ].join('\n');
}

export const HOMEPORT_SETUP = 'tls.mode "files", log level "info" (one JSON line per request, to a file)';

export function renderAgentToml(options: { runDir: string; port: number; upstreamPort: number; cert: CertificateFiles }): string {
  return [
    '[agent]',
    'name = "bench"',
    `listen = "127.0.0.1:${options.port}"`,
    `stateDir = ${JSON.stringify(join(options.runDir, 'homeport-state'))}`,
    '[tls]',
    'mode = "files"',
    `certFile = ${JSON.stringify(options.cert.certFile)}`,
    `keyFile = ${JSON.stringify(options.cert.keyFile)}`,
    'hostnames = ["127.0.0.1", "localhost"]',
    '[whitelist]',
    'allow = ["127.0.0.1/32"]',
    '[[route]]',
    'host = "*"',
    'path = "/"',
    `target = "http://127.0.0.1:${options.upstreamPort}"`,
    '[log]',
    'level = "info"',
    '',
  ].join('\n');
}

interface LaunchSpec {
  name: string;
  command: string;
  args: string[];
  port: number;
  url: string;
  setup: string;
  runDir: string;
  env?: NodeJS.ProcessEnv;
}

function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** Starts a server with stdout and stderr in `<name>.out`; resolves once it accepts connections. */
async function launch(spec: LaunchSpec): Promise<RunningServer> {
  const outFile = join(spec.runDir, `${spec.name}.out`);
  const out = openSync(outFile, 'w');
  let child: ChildProcess;
  try {
    child = spawnTracked(spec.command, spec.args, { cwd: spec.runDir, stdio: ['ignore', out, out], env: spec.env ?? process.env });
  } finally {
    closeSync(out);
  }
  try {
    await waitForPort(child, spec.port, 15_000);
  } catch (error) {
    await stopTracked(child);
    const errorLog = tail(outFile, 5) || tail(join(spec.runDir, `${spec.name}-error.log`), 5);
    throw new Error(`${spec.name} ${(error as Error).message}${errorLog ? `:\n${errorLog}` : ''}`);
  }
  return {
    name: spec.name,
    pid: child.pid!,
    port: spec.port,
    url: spec.url,
    setup: spec.setup,
    stop: () => stopTracked(child),
  };
}

const isRoot = () => process.getuid?.() === 0;

async function launchNginx(ctx: RunContext, name: string, port: number, config: string, url: string, setup: string): Promise<RunningServer> {
  const configFile = join(ctx.runDir, `${name}.conf`);
  await writeFile(configFile, config);
  return launch({ name, command: 'nginx', args: ['-p', ctx.runDir, '-c', configFile, '-g', 'daemon off;'], port, url, setup, runDir: ctx.runDir });
}

/** The LAN service every proxy forwards to, and the "direct" baseline. */
export async function startUpstream(ctx: RunContext): Promise<RunningServer> {
  const port = await freePort();
  const config = renderUpstreamNginx({ runDir: ctx.runDir, name: 'upstream', asRoot: isRoot(), port, filesDir: ctx.filesDir });
  return launchNginx(ctx, 'upstream', port, config, `http://127.0.0.1:${port}`, 'nginx static files, sendfile on, plain HTTP');
}

export async function startProxy(name: ProxyName, ctx: RunContext, upstreamPort: number): Promise<RunningServer> {
  const port = await freePort();
  const url = `https://127.0.0.1:${port}`;
  const common = { port, upstreamPort, cert: ctx.cert };
  switch (name) {
    case 'nginx':
      return launchNginx(ctx, 'nginx', port, renderNginxProxy({ ...common, runDir: ctx.runDir, name, asRoot: isRoot() }), url, NGINX_PROXY_SETUP);
    case 'caddy': {
      const configFile = join(ctx.runDir, 'Caddyfile');
      await writeFile(configFile, renderCaddyfile(common));
      // Caddy keeps data under $HOME / XDG folders: point them at the run folder.
      const env = { ...process.env, HOME: ctx.runDir, XDG_DATA_HOME: ctx.runDir, XDG_CONFIG_HOME: ctx.runDir };
      const args = ['run', '--config', configFile, '--adapter', 'caddyfile'];
      return launch({ name, command: 'caddy', args, port, url, setup: CADDY_SETUP, runDir: ctx.runDir, env });
    }
    case 'homeport': {
      const configFile = join(ctx.runDir, 'agent.toml');
      await writeFile(configFile, renderAgentToml({ ...common, runDir: ctx.runDir }));
      const args = [HOMEPORT_CLI, 'agent', '--config', configFile];
      return launch({ name, command: process.execPath, args, port, url, setup: HOMEPORT_SETUP, runDir: ctx.runDir });
    }
  }
}
