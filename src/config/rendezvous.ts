import { dirname, resolve } from 'node:path';
import { parseCidr } from '../common/cidr.js';
import { AGENT_NAME_PATTERN, MIN_SECRET_CHARS } from '../protocol/messages.js';
import { parseByteRate } from '../common/byte-rate.js';
import { isHostnameOrIp, parseHostPort } from './address.js';
import { isUnspecifiedIp, type ListenAddress } from '../common/address.js';
import { checkSecret, LOG_LEVELS, parseTomlTable, readAdminTtls, readConfigText, readHeartbeat, readTls } from './shared.js';
import { TableReader } from './fields.js';
import { Problems } from './problems.js';
import { readStun } from './rendezvous-stun.js';
import { acmeNameClaims, checkAcmeListener, readAcmeHostnames, type AcmeNameClaims } from './rendezvous-acme.js';
import {
  AGENT_MODES, MAX_RELAY_POOL, RELAY_DEFAULTS, RENDEZVOUS_DEFAULTS, type RelaySettings, type StunSettings, type RendezvousAdminSettings, type RendezvousAgentEntry, type RendezvousConfig, type RendezvousSettings,
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
  root.rejectUnknown(['rendezvous', 'tls', 'agent', 'admin', 'stun', 'log']);

  const settings = readSettings(root.child('rendezvous'), baseDir);
  const tls = readTls(root.child('tls'), baseDir, settings.stateDir);
  const agents = readAgents(root.children('agent'), env, problems, acmeNameClaims(tls));
  const stun = readStun(root.child('stun'));
  checkPortClashes(agents, settings, stun, problems);
  checkAcmeListener(settings, tls, agents, problems);
  const admin = readAdmin(root.child('admin'));
  const logTable = root.child('log');
  logTable.rejectUnknown(['level']);
  const level = logTable.oneOf('level', LOG_LEVELS, 'info');

  problems.throwIfAny();
  return { file, rendezvous: settings, tls: tls!, agents, admin, ...(stun ? { stun } : {}), log: { level: level! } };
}

function readSettings(table: TableReader, baseDir: string): RendezvousSettings {
  table.rejectUnknown(['control', 'http', 'acmeHttp', 'stateDir', 'heartbeat', 'probeInterval', 'probeTimeout', 'redirectAllow', 'publicHost']);
  const control = readListen(table, 'control', RENDEZVOUS_DEFAULTS.control);
  const http = readListen(table, 'http', RENDEZVOUS_DEFAULTS.http);
  const acmeHttp = table.table.acmeHttp === undefined ? undefined : readListen(table, 'acmeHttp');
  if (sameListener(control, http)) {
    table.problems.add(table.key('http'), `uses the same address as ${table.key('control')}; give them different ports`);
  }
  const redirectAllow = table.stringArray('redirectAllow', []).flatMap((cidr, index) => {
    const parsed = parseCidr(cidr);
    if (parsed.ok) return [parsed.value.text];
    table.problems.add(`${table.key('redirectAllow')}[${index}]`, `"${cidr}" ${parsed.error}`);
    return [];
  });
  const publicHost = table.optionalString('publicHost');
  if (publicHost !== undefined && (publicHost.includes('*') || !isHostnameOrIp(publicHost))) table.problems.add(table.key('publicHost'), `"${publicHost}" is not a host name; write the name users reach the rendezvous at, e.g. "rdv.example.com"`);
  return {
    ...(publicHost !== undefined ? { publicHost } : {}),
    control,
    http,
    ...(acmeHttp !== undefined ? { acmeHttp } : {}),
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

/** A listen address; after a problem, a stand-in (port 0 clashes with nothing) so the other checks still run. */
function readListen(table: TableReader, name: string, fallback?: string): ListenAddress {
  const text = table.string(name, fallback);
  if (text === undefined) return { host: '0.0.0.0', port: 0 };
  const parsed = parseHostPort(text, { allowPortZero: true });
  if (parsed.ok) return parsed.value;
  table.problems.add(table.key(name), parsed.error);
  return { host: '0.0.0.0', port: 0 };
}

/** The same [tls] table as the agent's: the rendezvous serves HTTPS from the same certificate sources. */
function readAgents(tables: TableReader[], env: NodeJS.ProcessEnv, problems: Problems, acmeClaims: AcmeNameClaims): RendezvousAgentEntry[] {
  if (tables.length === 0) {
    problems.add('agent', 'is missing; add at least one [[agent]] with name and secret (or secretEnv)');
  }
  const seen = new Set<string>();
  const agents: RendezvousAgentEntry[] = [];
  for (const table of tables) {
    table.rejectUnknown(['name', 'secret', 'secretEnv', 'mode', 'relay', 'relayMaxConnections', 'relayRate', 'relayIdle', 'relayPool', 'acmeHostnames']);
    const name = table.string('name');
    if (name !== undefined && !AGENT_NAME_PATTERN.test(name)) {
      problems.add(table.key('name'), `"${name}" must be lower-case letters, digits and dashes, at most 63 (it appears in URLs)`);
    } else if (name !== undefined && seen.has(name)) {
      problems.add(table.key('name'), `"${name}" is listed twice; each agent needs its own name`);
    }
    if (name !== undefined) seen.add(name);
    const secret = readSecret(table, env);
    const relay = readRelay(table);
    const mode = table.oneOf('mode', AGENT_MODES, relay ? 'auto' : 'direct');
    if (mode === 'relay' && !relay) problems.add(table.key('mode'), '"relay" needs a relay port; add relay = "0.0.0.0:9443" to this [[agent]]');
    const acmeHostnames = readAcmeHostnames(table, acmeClaims);
    if (name !== undefined && secret !== undefined && mode !== undefined) agents.push({ name, secret, mode, ...(relay ? { relay } : {}), ...(acmeHostnames ? { acmeHostnames } : {}) });
  }
  return agents;
}

/** Two listeners that would fight over one port (port 0 never does: each gets its own). */
function sameListener(a: ListenAddress, b: ListenAddress): boolean {
  return a.port !== 0 && a.port === b.port && (a.host === b.host || isUnspecifiedIp(a.host) || isUnspecifiedIp(b.host));
}

/** Every TCP listener on a port of its own: the STUN listeners and each relay apart from everything before them. */
function checkPortClashes(agents: readonly RendezvousAgentEntry[], settings: RendezvousSettings, stun: StunSettings | undefined, problems: Problems): void {
  const listeners: { key: string; listen: ListenAddress }[] = [
    { key: 'rendezvous.control', listen: settings.control },
    { key: 'rendezvous.http', listen: settings.http },
    ...(settings.acmeHttp ? [{ key: 'rendezvous.acmeHttp', listen: settings.acmeHttp }] : []),
    ...(stun ? [{ key: 'stun.listen', listen: stun.listen }] : []),
    ...(stun?.alternate ? [{ key: 'stun.alternate', listen: stun.alternate }] : []),
    ...agents.flatMap((agent, index) => (agent.relay ? [{ key: `agent[${index}].relay`, listen: agent.relay.listen }] : [])),
  ];
  listeners.forEach(({ key, listen }, index) => {
    if (index < 2) return; // control against http: readSettings says it in its own words
    const clash = listeners.slice(0, index).find((other) => sameListener(other.listen, listen));
    if (clash) problems.add(key, `uses the same port as ${clash.key}; give each listener its own port`);
  });
}

/** The relay keys of one [[agent]]; undefined without `relay`. */
function readRelay(table: TableReader): RelaySettings | undefined {
  const listenText = table.optionalString('relay');
  if (listenText === undefined) {
    for (const stray of ['relayMaxConnections', 'relayRate', 'relayIdle', 'relayPool'].filter((key) => table.table[key] !== undefined)) {
      table.problems.add(table.key(stray), 'needs relay = "0.0.0.0:9443" in the same [[agent]]: without a relay port it does nothing');
    }
    return undefined;
  }
  const listen = parseHostPort(listenText, { allowPortZero: true });
  if (!listen.ok) table.problems.add(table.key('relay'), listen.error);
  const maxConnections = table.integer('relayMaxConnections', RELAY_DEFAULTS.maxConnections, 1, 100_000);
  const pool = table.integer('relayPool', RELAY_DEFAULTS.pool, 0, MAX_RELAY_POOL);
  const rate = parseByteRate(table.string('relayRate', '0') ?? '0');
  if (!rate.ok) table.problems.add(table.key('relayRate'), rate.error);
  const idleMs = table.duration('relayIdle', RELAY_DEFAULTS.idleMs);
  if (!listen.ok) return undefined;
  return { listen: listen.value, maxConnections, bytesPerSecond: rate.ok ? rate.value : 0, idleMs, pool };
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
