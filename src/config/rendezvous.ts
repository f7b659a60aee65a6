import { dirname, resolve } from 'node:path';
import { parseCidr } from '../common/cidr.js';
import { AGENT_NAME_PATTERN, MIN_SECRET_CHARS } from '../protocol/messages.js';
import { parseHostPort } from './address.js';
import type { ListenAddress } from '../common/address.js';
import { checkSecret, LOG_LEVELS, parseTomlTable, readAdminTtls, readConfigText, readHeartbeat, readTls } from './shared.js';
import { TableReader } from './fields.js';
import { Problems } from './problems.js';
import {
  RENDEZVOUS_DEFAULTS, type RendezvousAdminSettings, type RendezvousAgentEntry, type RendezvousConfig, type RendezvousSettings,
} from './rendezvous-types.js';

/** Reads, parses and validates a rendezvous config file; throws ConfigError listing every problem. */
export async function loadRendezvousConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<RendezvousConfig> {
  return parseRendezvousConfig(await readConfigText(file), file, env);
}

/**
 * Pure: config text (and the environment, for `secretEnv`) → validated RendezvousConfig. Relative paths
 * are taken from the config file's folder.
 */
export function parseRendezvousConfig(text: string, file: string, env: NodeJS.ProcessEnv = {}): RendezvousConfig {
  const problems = new Problems(file);
  const root = new TableReader(parseTomlTable(text, file), '', problems);
  const baseDir = dirname(resolve(file));
  root.rejectUnknown(['rendezvous', 'tls', 'agent', 'admin', 'log']);

  const settings = readSettings(root.child('rendezvous'), baseDir);
  const tls = readTls(root.child('tls'), baseDir, settings.stateDir);
  const agents = readAgents(root.children('agent'), env, problems);
  const admin = readAdmin(root.child('admin'));
  const logTable = root.child('log');
  logTable.rejectUnknown(['level']);
  const level = logTable.oneOf('level', LOG_LEVELS, 'info');

  problems.throwIfAny();
  return { file, rendezvous: settings, tls: tls!, agents, admin, log: { level: level! } };
}

function readSettings(table: TableReader, baseDir: string): RendezvousSettings {
  table.rejectUnknown(['control', 'http', 'stateDir', 'heartbeat', 'probeInterval', 'probeTimeout', 'redirectAllow']);
  const control = readListen(table, 'control', RENDEZVOUS_DEFAULTS.control);
  const http = readListen(table, 'http', RENDEZVOUS_DEFAULTS.http);
  if (control.port !== 0 && control.port === http.port && control.host === http.host) {
    table.problems.add(table.key('http'), `uses the same address as ${table.key('control')}; give them different ports`);
  }
  const redirectAllow = table.stringArray('redirectAllow', []).flatMap((cidr, index) => {
    const parsed = parseCidr(cidr);
    if (parsed.ok) return [parsed.value.text];
    table.problems.add(`${table.key('redirectAllow')}[${index}]`, `"${cidr}" ${parsed.error}`);
    return [];
  });
  return {
    control,
    http,
    stateDir: resolve(baseDir, table.string('stateDir', './state') ?? './state'),
    heartbeatMs: readHeartbeat(table, RENDEZVOUS_DEFAULTS.heartbeatMs),
    probeIntervalMs: table.duration('probeInterval', RENDEZVOUS_DEFAULTS.probeIntervalMs),
    probeTimeoutMs: table.duration('probeTimeout', RENDEZVOUS_DEFAULTS.probeTimeoutMs),
    redirectAllow,
  };
}

/** [admin]: the same allowMeTtl and maxTtl as the agent's, for the API at /api/agents/<name>/. */
function readAdmin(table: TableReader): RendezvousAdminSettings {
  table.rejectUnknown(['allowMeTtl', 'maxTtl']);
  return readAdminTtls(table);
}

function readListen(table: TableReader, name: string, fallback: string): ListenAddress {
  const text = table.string(name, fallback) ?? fallback;
  const parsed = parseHostPort(text, { allowPortZero: true });
  if (parsed.ok) return parsed.value;
  table.problems.add(table.key(name), parsed.error);
  return { host: '0.0.0.0', port: 0 };
}

/** The same [tls] table as the agent's: the rendezvous serves HTTPS from the same certificate sources. */
function readAgents(tables: TableReader[], env: NodeJS.ProcessEnv, problems: Problems): RendezvousAgentEntry[] {
  if (tables.length === 0) {
    problems.add('agent', 'is missing; add at least one [[agent]] with name and secret (or secretEnv)');
  }
  const seen = new Set<string>();
  const agents: RendezvousAgentEntry[] = [];
  for (const table of tables) {
    table.rejectUnknown(['name', 'secret', 'secretEnv']);
    const name = table.string('name');
    if (name !== undefined && !AGENT_NAME_PATTERN.test(name)) {
      problems.add(table.key('name'), `"${name}" must be lower-case letters, digits and dashes, at most 63 (it appears in URLs)`);
    } else if (name !== undefined && seen.has(name)) {
      problems.add(table.key('name'), `"${name}" is listed twice; each agent needs its own name`);
    }
    if (name !== undefined) seen.add(name);
    const secret = readSecret(table, env);
    if (name !== undefined && secret !== undefined) agents.push({ name, secret });
  }
  return agents;
}

/** `secret = "..."` in the file, or `secretEnv = "VAR"` naming an environment variable that holds it. */
function readSecret(table: TableReader, env: NodeJS.ProcessEnv): string | undefined {
  const inFile = table.table.secret !== undefined;
  const inEnv = table.table.secretEnv !== undefined;
  if (inFile && inEnv) {
    table.problems.add(table.key('secret'), 'and secretEnv are both set; keep one');
    return undefined;
  }
  if (!inFile && !inEnv) {
    table.problems.add(table.key('secret'), `is missing; add secret = "..." (at least ${MIN_SECRET_CHARS} characters, e.g. from "openssl rand -base64 24") or secretEnv = "HOMEPORT_SECRET_<NAME>"`);
    return undefined;
  }
  const key = table.key(inFile ? 'secret' : 'secretEnv');
  let secret: string | undefined;
  if (inFile) {
    secret = table.string('secret');
  } else {
    const variable = table.string('secretEnv');
    if (variable === undefined) return undefined;
    secret = env[variable];
    if (secret === undefined || secret === '') {
      table.problems.add(key, `names the environment variable ${variable}, which is not set; export it before starting`);
      return undefined;
    }
  }
  return secret === undefined ? undefined : checkSecret(table.problems, key, secret);
}
