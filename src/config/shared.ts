import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { isHostnameOrIp } from './address.js';
import type { TlsConfig } from './agent-types.js';
import { TableReader, type Table } from './fields.js';
import { ConfigError } from '../common/config-error.js';

/** What both programs' configs share: reading the file, TOML, the [tls] and [log] sections. */

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
  table.rejectUnknown(['mode', 'certDir', 'hostnames', 'certFile', 'keyFile']);
  const mode = table.oneOf('mode', ['selfsigned', 'files'] as const, 'selfsigned');
  const certDir = resolve(baseDir, table.optionalString('certDir') ?? resolve(stateDir, 'certs'));
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
  for (const key of ['certFile', 'keyFile']) {
    if (table.table[key] !== undefined) table.problems.add(table.key(key), 'is only used with mode = "files"; remove it or set mode = "files"');
  }
  return mode === undefined ? undefined : { mode, certDir, hostnames };
}
