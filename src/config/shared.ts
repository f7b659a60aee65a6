import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { readAcme } from './acme.js';
import { isHostnameOrIp } from './address.js';
import { DEFAULT_ALLOW_ME_TTL_MS, DEFAULT_MAX_TTL_MS, type TlsConfig } from './agent-types.js';
import { TableReader, type Table } from './fields.js';
import { ConfigError } from '../common/config-error.js';
import { formatDuration } from '../common/duration.js';
import { MAX_ADMIN_TTL_MS, MAX_HEARTBEAT_MS, MIN_HEARTBEAT_MS, MIN_SECRET_CHARS } from '../protocol/messages.js';
import type { Problems } from './problems.js';

/**
 * What both programs' configs share: reading the file, TOML, the [tls] and [log] sections, and the limits
 * both apply alike to the shared secret, the heartbeat and the admin lifetimes.
 */

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

export async function readConfigText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist; pass the right path with --config' : `cannot be read (${code ?? String(error)})`;
    throw new ConfigError([`${file}: ${why}`]);
  }
}

export function parseTomlTable(text: string, file: string): Table {
  try {
    return parseToml(text) as Table;
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    throw new ConfigError([`${file}: is not valid TOML: ${message}`]);
  }
}

/** The [tls] section, the same for the agent and the rendezvous. */
export function readTls(table: TableReader, baseDir: string, stateDir: string): TlsConfig | undefined {
  table.rejectUnknown(['mode', 'certDir', 'hostnames', 'certFile', 'keyFile', 'acme']);
  const mode = table.oneOf('mode', ['selfsigned', 'files', 'acme'] as const, 'selfsigned');
  const certDir = resolve(baseDir, table.optionalString('certDir') ?? resolve(stateDir, 'certs'));
  rejectKeysOutsideMode(table, mode);
  if (mode === 'acme') {
    const acme = readAcme(table.child('acme'), baseDir);
    return acme === undefined ? undefined : { mode, certDir, hostnames: acme.hostnames, acme };
  }
  const hostnames = table.stringArray('hostnames', ['localhost', '127.0.0.1', '::1']);
  hostnames.forEach((host, index) => {
    if (!isHostnameOrIp(host)) {
      table.problems.add(`${table.key('hostnames')}[${index}]`, `"${host}" is not a host name or IP address`);
    }
  });
  if (mode === 'files') {
    const certFile = table.string('certFile');
    const keyFile = table.string('keyFile');
    if (certFile === undefined || keyFile === undefined) return undefined;
    return { mode, certDir, hostnames, certFile: resolve(baseDir, certFile), keyFile: resolve(baseDir, keyFile) };
  }
  return mode === undefined ? undefined : { mode, certDir, hostnames };
}

/** Keys of another mode are a mistake to point out, not to ignore: the user believes they take effect. */
function rejectKeysOutsideMode(table: TableReader, mode: TlsConfig['mode'] | undefined): void {
  if (mode === undefined) return;
  const only = (key: string, owner: TlsConfig['mode']): void => {
    if (table.table[key] !== undefined && mode !== owner) table.problems.add(table.key(key), `is only used with mode = "${owner}"; remove it or set mode = "${owner}"`);
  };
  only('certFile', 'files');
  only('keyFile', 'files');
  only('acme', 'acme');
  if (mode === 'acme' && table.table.hostnames !== undefined) {
    table.problems.add(table.key('hostnames'), 'is not used with mode = "acme"; list the names in tls.acme.hostnames instead');
  }
}

/**
 * A shared secret, checked alike by both programs. The problem names the length only, never the secret:
 * problems end up in terminals and logs, and a bad secret is still a secret.
 */
export function checkSecret(problems: Problems, key: string, secret: unknown): string | undefined {
  if (typeof secret !== 'string') {
    problems.add(key, 'must be a string in quotes; make one with: openssl rand -base64 24');
    return undefined;
  }
  if (secret.length < MIN_SECRET_CHARS) {
    problems.add(key, `is too short (${secret.length} characters); use at least ${MIN_SECRET_CHARS}, e.g. from "openssl rand -base64 24"`);
    return undefined;
  }
  return secret;
}

/** `heartbeat`, within the range the protocol's `welcome` can announce; the same for the agent and the rendezvous. */
export function readHeartbeat(table: TableReader, fallbackMs: number): number {
  const heartbeatMs = table.duration('heartbeat', fallbackMs);
  if (heartbeatMs < MIN_HEARTBEAT_MS || heartbeatMs > MAX_HEARTBEAT_MS) {
    table.problems.add(table.key('heartbeat'), `must be from ${formatDuration(MIN_HEARTBEAT_MS)} to ${formatDuration(MAX_HEARTBEAT_MS)}; the default is "${formatDuration(fallbackMs)}"`);
  }
  return heartbeatMs;
}

/** `allowMeTtl` and `maxTtl` of an [admin] section, alike in both programs: maxTtl at most what an `admin` order can carry. */
export function readAdminTtls(table: TableReader): { allowMeTtlMs: number; maxTtlMs: number } {
  const allowMeTtlMs = table.duration('allowMeTtl', DEFAULT_ALLOW_ME_TTL_MS);
  const maxTtlMs = table.duration('maxTtl', DEFAULT_MAX_TTL_MS);
  if (maxTtlMs > MAX_ADMIN_TTL_MS) {
    table.problems.add(table.key('maxTtl'), `must be at most "${formatDuration(MAX_ADMIN_TTL_MS)}", the longest lifetime the rendezvous can pass to an agent`);
  } else if (allowMeTtlMs > maxTtlMs) {
    table.problems.add(table.key('allowMeTtl'), `"${formatDuration(allowMeTtlMs)}" is longer than ${table.key('maxTtl')} "${formatDuration(maxTtlMs)}"; shorten it or raise maxTtl`);
  }
  return { allowMeTtlMs, maxTtlMs };
}
