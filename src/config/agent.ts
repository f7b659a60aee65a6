import { dirname, resolve } from 'node:path';
import { parseCidr } from '../common/cidr.js';
import { AGENT_NAME_PATTERN } from '../protocol/messages.js';
import { err } from '../common/result.js';
import { formatDuration } from '../common/duration.js';
import { parseHostPort, parseServerAddress, isHostnameOrIp } from './address.js';
import { validateCronExpression } from 'cron';
import { parseAdminKey, type AdminKey } from '../common/admin-key.js';
import {
  DEFAULT_ADMIN_LISTEN, DEFAULT_HEARTBEAT_MS, DEFAULT_LIMITS, MAX_CONNECTIONS_LIMIT,
  DEFAULT_REREGISTER, DEFAULT_REREGISTER_DELAY_MS, DEFAULT_TIMEOUTS, MAX_REREGISTER_DELAY_MS,
  type AgentAdminConfig, type AgentConfig, type AgentRendezvousConfig, type RouteConfig, type WhitelistEntrySpec,
} from './agent-types.js';
import { Problems } from './problems.js';
import { checkSecret, LOG_LEVELS, parseTomlTable, readAdminTtls, readConfigText, readHeartbeat, readTls } from './shared.js';
import { TableReader, describe, isTable } from './fields.js';

/** Reads, parses and validates an agent config file; throws ConfigError listing every problem. */
export async function loadAgentConfig(file: string): Promise<AgentConfig> {
  return parseAgentConfig(await readConfigText(file), file);
}

/** Pure: config text → validated AgentConfig. Relative paths are taken from the config file's folder. */
export function parseAgentConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const problems = new Problems(file);
  const root = new TableReader(parseTomlTable(text, file), '', problems);
  const baseDir = dirname(resolve(file));
  root.rejectUnknown(['agent', 'tls', 'whitelist', 'route', 'timeouts', 'limits', 'log', 'rendezvous', 'admin']);

  const agentTable = root.child('agent');
  agentTable.rejectUnknown(['name', 'listen', 'stateDir']);
  const name = agentTable.string('name', 'home');
  if (name !== undefined && !AGENT_NAME_PATTERN.test(name)) {
    problems.add('agent.name', `"${name}" must be lower-case letters, digits and dashes, at most 63 (it appears in URLs)`);
  }
  const listenText = agentTable.string('listen', '0.0.0.0:25305');
  const listen = listenText === undefined ? undefined : parseHostPort(listenText, { allowPortZero: true });
  if (listen && !listen.ok) problems.add('agent.listen', listen.error);
  const stateDir = resolve(baseDir, agentTable.string('stateDir', './state') ?? './state');

  const tls = readTls(root.child('tls'), baseDir, stateDir);
  const allow = readWhitelist(root.child('whitelist'));
  const routes = readRoutes(root.children('route'), problems);
  const timeouts = readTimeouts(root.child('timeouts'));
  const limits = readLimits(root.child('limits'));
  const logTable = root.child('log');
  logTable.rejectUnknown(['level']);
  const level = logTable.oneOf('level', LOG_LEVELS, 'info');
  const rendezvous = root.table.rendezvous === undefined ? undefined : readRendezvous(root.child('rendezvous'), env);
  const admin = root.table.admin === undefined ? undefined : readAdmin(root.child('admin'), baseDir, env);

  problems.throwIfAny();
  return {
    file,
    agent: { name: name!, listen: (listen as { ok: true; value: AgentConfig['agent']['listen'] }).value, stateDir },
    tls: tls!,
    whitelist: { allow },
    routes,
    timeouts,
    limits,
    log: { level: level! },
    ...(rendezvous ? { rendezvous } : {}),
    ...(admin ? { admin } : {}),
  };
}

function readWhitelist(table: TableReader): WhitelistEntrySpec[] {
  table.rejectUnknown(['allow']);
  const raw = table.table.allow;
  if (raw === undefined) return [];
  const key = table.key('allow');
  if (!Array.isArray(raw)) {
    table.problems.add(key, `must be a list such as ["192.168.1.0/24", "2001:db8::/32"], not ${describe(raw)}`);
    return [];
  }
  const entries: WhitelistEntrySpec[] = [];
  raw.forEach((item, index) => {
    const entry = readWhitelistEntry(item, `${key}[${index}]`, table.problems);
    if (entry) entries.push(entry);
  });
  return entries;
}

/** An entry is "CIDR" or { cidr = "CIDR", note = "...", expires = 2027-01-01T00:00:00Z }. */
function readWhitelistEntry(item: unknown, key: string, problems: Problems): WhitelistEntrySpec | undefined {
  const spec = isTable(item) ? item : { cidr: item };
  const reader = new TableReader(spec, key, problems);
  if (isTable(item)) reader.rejectUnknown(['cidr', 'note', 'expires']);
  if (typeof spec.cidr !== 'string') {
    problems.add(key, `must be an address or CIDR in quotes, or { cidr = "...", note = "..." }, not ${describe(item)}`);
    return undefined;
  }
  const parsed = parseCidr(spec.cidr);
  if (!parsed.ok) {
    problems.add(key, `"${spec.cidr}" ${parsed.error}`);
    return undefined;
  }
  const entry: WhitelistEntrySpec = { cidr: parsed.value.text };
  const note = reader.optionalString('note');
  if (note !== undefined) entry.note = note;
  if (spec.expires !== undefined) {
    // smol-toml gives a TomlDate (a Date subclass); keep a plain Date
    const expires = new Date(spec.expires instanceof Date ? spec.expires.getTime() : String(spec.expires));
    if (Number.isNaN(expires.getTime())) {
      problems.add(`${key}.expires`, 'must be a date-time such as 2027-01-01T00:00:00Z');
    } else {
      entry.expires = expires;
    }
  }
  return entry;
}

function readRoutes(tables: TableReader[], problems: Problems): RouteConfig[] {
  if (tables.length === 0) {
    problems.add('route', 'is missing; add at least one [[route]] with host, path and target (e.g. target = "http://127.0.0.1:8096")');
  }
  const routes: RouteConfig[] = [];
  for (const table of tables) {
    table.rejectUnknown(['host', 'path', 'target', 'insecure']);
    const host = (table.string('host', '*') ?? '*').toLowerCase();
    if (host !== '*' && !isHostnameOrIp(host)) {
      problems.add(table.key('host'), `"${host}" must be an exact host, "*.suffix" or "*"`);
    }
    const path = table.string('path', '/') ?? '/';
    if (!path.startsWith('/')) problems.add(table.key('path'), `"${path}" must start with "/"`);
    const target = readTarget(table);
    const insecure = table.boolean('insecure', false);
    if (target) routes.push({ host, path, target, insecure });
  }
  return routes;
}

function readTarget(table: TableReader): URL | undefined {
  const text = table.string('target');
  if (text === undefined) return undefined;
  const url = URL.canParse(text) ? new URL(text) : undefined;
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    table.problems.add(table.key('target'), `"${text}" must be an http:// or https:// URL such as "http://127.0.0.1:8096"`);
    return undefined;
  }
  if (url.search || url.hash) {
    table.problems.add(table.key('target'), `"${text}" must not have a query or fragment`);
    return undefined;
  }
  return url;
}

function readTimeouts(table: TableReader): AgentConfig['timeouts'] {
  table.rejectUnknown(['headers', 'keepAlive', 'idle', 'upstreamConnect', 'upstreamResponse']);
  return {
    headersMs: table.duration('headers', DEFAULT_TIMEOUTS.headersMs),
    keepAliveMs: table.duration('keepAlive', DEFAULT_TIMEOUTS.keepAliveMs),
    idleMs: table.duration('idle', DEFAULT_TIMEOUTS.idleMs, true),
    upstreamConnectMs: table.duration('upstreamConnect', DEFAULT_TIMEOUTS.upstreamConnectMs),
    upstreamResponseMs: table.duration('upstreamResponse', DEFAULT_TIMEOUTS.upstreamResponseMs, true),
  };
}

function readLimits(table: TableReader): AgentConfig['limits'] {
  table.rejectUnknown(['connectionsPerAddress', 'connections']);
  const connectionsPerAddress = table.integer('connectionsPerAddress', DEFAULT_LIMITS.connectionsPerAddress, 1, MAX_CONNECTIONS_LIMIT);
  const connections = table.integer('connections', DEFAULT_LIMITS.connections, 1, MAX_CONNECTIONS_LIMIT);
  if (connectionsPerAddress > connections) {
    table.problems.add(table.key('connectionsPerAddress'), `${connectionsPerAddress} is more than limits.connections ${connections}: one address could take every connection; lower it or raise limits.connections`);
  }
  return { connectionsPerAddress, connections };
}

function readRendezvous(table: TableReader, env: NodeJS.ProcessEnv): AgentRendezvousConfig | undefined {
  table.rejectUnknown(['server', 'secret', 'heartbeat', 'reregister', 'reregisterDelay', 'timezone', 'onAddressChange', 'publicHost']);
  const serverText = table.string('server');
  const server = serverText === undefined ? undefined : parseServerAddress(serverText);
  if (server && !server.ok) table.problems.add(table.key('server'), server.error);
  const secret = readSecret(table, env);
  const heartbeatMs = readHeartbeat(table, DEFAULT_HEARTBEAT_MS);
  const reregister = table.string('reregister', DEFAULT_REREGISTER);
  if (reregister !== undefined && !validateCronExpression(reregister).valid) {
    table.problems.add(table.key('reregister'), `"${reregister}" is not a cron expression; write e.g. "0 20 4 * * *" (sec min hour day month weekday)`);
  }
  const reregisterDelayMs = table.duration('reregisterDelay', DEFAULT_REREGISTER_DELAY_MS, true);
  if (reregisterDelayMs > MAX_REREGISTER_DELAY_MS) {
    table.problems.add(table.key('reregisterDelay'), `must be at most "${formatDuration(MAX_REREGISTER_DELAY_MS)}": the home stays unreachable until the re-register runs`);
  }
  const timezone = table.string('timezone', Intl.DateTimeFormat().resolvedOptions().timeZone);
  if (timezone !== undefined && !isTimeZone(timezone)) {
    table.problems.add(table.key('timezone'), `"${timezone}" is not an IANA time zone; write e.g. "Asia/Shanghai" or "Europe/Berlin"`);
  }
  const onAddressChange = table.optionalString('onAddressChange');
  const publicHost = table.optionalString('publicHost');
  if (publicHost !== undefined && !isHostnameOrIp(publicHost)) table.problems.add(table.key('publicHost'), `"${publicHost}" is not a host name`);
  if (!server?.ok || secret === undefined || reregister === undefined || timezone === undefined) return undefined;
  return {
    server: server.value, secret, heartbeatMs, reregister, reregisterDelayMs, timezone,
    ...(onAddressChange !== undefined ? { onAddressChange } : {}),
    ...(publicHost !== undefined ? { publicHost } : {}),
  };
}

/** The shared secret, from the file or HOMEPORT_SECRET (the environment wins, so a file can stay secret-free). */
function readSecret(table: TableReader, env: NodeJS.ProcessEnv): string | undefined {
  const fromEnv = env.HOMEPORT_SECRET;
  const secret = fromEnv !== undefined && fromEnv !== '' ? fromEnv : table.table.secret;
  const source = secret === fromEnv ? 'HOMEPORT_SECRET' : table.key('secret');
  if (secret === undefined) {
    table.problems.add(table.key('secret'), 'is missing; set it, or the environment variable HOMEPORT_SECRET (the same secret as the rendezvous\'s [[agent]] entry)');
    return undefined;
  }
  return checkSecret(table.problems, source, secret);
}

function readAdmin(table: TableReader, baseDir: string, env: NodeJS.ProcessEnv): AgentAdminConfig | undefined {
  table.rejectUnknown(['listen', 'key', 'rendezvousUrl', 'ca', 'allowMeTtl', 'maxTtl']);
  const listenText = table.string('listen', DEFAULT_ADMIN_LISTEN);
  const listen = listenText === undefined ? undefined : parseHostPort(listenText, { allowPortZero: true });
  if (listen && !listen.ok) table.problems.add(table.key('listen'), listen.error);
  const key = readAdminKey(table, env);
  const rendezvousUrl = readRendezvousUrl(table);
  const caText = table.optionalString('ca');
  if (caText !== undefined && table.table.rendezvousUrl === undefined) {
    table.problems.add(table.key('ca'), 'is only used with rendezvousUrl (the CA to trust for it); remove it or set rendezvousUrl');
  }
  const { allowMeTtlMs, maxTtlMs } = readAdminTtls(table);
  if (!listen?.ok) return undefined;
  return {
    listen: listen.value,
    ...(key ? { key } : {}),
    ...(rendezvousUrl ? { rendezvousUrl } : {}),
    ...(caText !== undefined ? { ca: resolve(baseDir, caText) } : {}),
    allowMeTtlMs,
    maxTtlMs,
  };
}

/** The admin key, from HOMEPORT_ADMIN_KEY (which wins, so the file can stay secret-free) or the file. */
function readAdminKey(table: TableReader, env: NodeJS.ProcessEnv): AdminKey | undefined {
  const fromEnv = env.HOMEPORT_ADMIN_KEY;
  const [source, value] = fromEnv !== undefined && fromEnv !== '' ? ['HOMEPORT_ADMIN_KEY', fromEnv] : [table.key('key'), table.table.key];
  if (value === undefined) return undefined;
  const parsed = typeof value === 'string' ? parseAdminKey(value) : err('must be a string "<id>:<secret>" in quotes; run "homeport keygen --config <file>" for one');
  if (!parsed.ok) {
    table.problems.add(source, parsed.error);
    return undefined;
  }
  return parsed.value;
}

/** The rendezvous's web port as an https origin such as "https://rdv.example.com:8443". */
function readRendezvousUrl(table: TableReader): URL | undefined {
  const text = table.optionalString('rendezvousUrl');
  if (text === undefined) return undefined;
  const url = URL.canParse(text) ? new URL(text) : undefined;
  const hint = 'write the https address of the rendezvous\'s web port, e.g. "https://rdv.example.com:8443"';
  if (!url || url.protocol !== 'https:' || url.hostname === '') {
    table.problems.add(table.key('rendezvousUrl'), `"${text}" is not an https:// URL; ${hint}`);
    return undefined;
  }
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) {
    table.problems.add(table.key('rendezvousUrl'), `"${text}" must be scheme, host and port only (no path, query or user); ${hint}`);
    return undefined;
  }
  return url;
}

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
