import { readFile } from 'node:fs/promises';
import { rootCertificates } from 'node:tls';
import { AdminClient, type AdminEndpoint } from '../admin/client.js';
import type { ApiWhitelistEntry } from '../admin/api-types.js';
import { parseAdminKey, type AdminKey } from '../common/admin-key.js';
import { parseCidr } from '../common/cidr.js';
import { parseDuration, spanInWords } from '../common/duration.js';
import type { Result } from '../common/result.js';
import { formatHostPort, urlHost } from '../common/address.js';
import { loadAgentConfig } from '../config/agent.js';
import type { AgentConfig } from '../config/agent-types.js';
import { ConfigError } from '../common/config-error.js';
import { selfSignedPaths } from '../tls/selfsigned.js';
import { type Command, EXIT, parseFlags, UsageError } from './command.js';

const CONNECTION_FLAGS = {
  config: { type: 'string', short: 'c' },
  via: { type: 'string' },
  ca: { type: 'string' },
  json: { type: 'boolean' },
} as const;

const ENTRY_FLAGS = { ttl: { type: 'string' }, note: { type: 'string' } } as const;

const CONNECTION_HELP = `  -c, --config <file>   the agent's configuration: its [admin] section and agent.name
  --via <where>         agent (default): the agent's LAN admin listener, https://<[admin] listen>/api/
                        rendezvous: <[admin] rendezvousUrl>/api/agents/<agent.name>/
                        or the https URL of an API base
  --ca <pem file>       trust this CA for the server's certificate (for a URL given with --via)
  --json                print the answer as JSON
  -h, --help            show this help

The admin key comes from HOMEPORT_ADMIN_KEY or [admin] key, never from a flag (others could read it in
the process list). An agent key works with --via agent, a rendezvous key with --via rendezvous; make one
with "homeport keygen --config <that program's config>".

Exit codes: 0 done, 1 the server refused or could not be reached, 2 usage or config error.`;

export const whitelistCommand: Command = {
  name: 'whitelist',
  summary: 'list, add or remove whitelist entries through the admin API (agent or rendezvous)',
  help: `Usage: homeport whitelist list [options]
       homeport whitelist add <cidr> [--ttl 24h] [--note <text>] [options]
       homeport whitelist remove <cidr> [options]

Shows or changes the agent's whitelist while it runs. Entries added here expire after --ttl (default the
agent's [admin] allowMeTtl, at most its maxTtl) and disappear on time; entries from agent.toml are listed
with source "config" and can only be changed there.

Options:
  --ttl <duration>      how long an added entry lasts, e.g. 30m, 24h, 7d
  --note <text>         a reminder shown in the list, e.g. "hotel wifi"
${CONNECTION_HELP}`,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { ...CONNECTION_FLAGS, ...ENTRY_FLAGS }, true);
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const [action, cidrText, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected "${extra[0]}"`);
    if (action === 'list') {
      if (cidrText !== undefined) throw new UsageError('list takes no address');
      rejectEntryFlags(values, 'list');
      const { client } = await connect(values);
      return report('whitelist', await client.list(), values.json, formatTable);
    }
    if (action !== 'add' && action !== 'remove') throw new UsageError('say what to do: list, add <cidr> or remove <cidr>');
    if (cidrText === undefined) throw new UsageError(`${action} needs an address or CIDR, e.g. 203.0.113.7/32`);
    const parsed = parseCidr(cidrText);
    if (!parsed.ok) throw new UsageError(`"${cidrText}" ${parsed.error}`);
    const cidr = parsed.value.text;
    if (action === 'add') {
      const { client } = await connect(values);
      return report('whitelist', await client.add({ cidr, ...entryOptions(values) }), values.json, describeAdded);
    }
    rejectEntryFlags(values, 'remove');
    const { client } = await connect(values);
    return report('whitelist', await client.remove(cidr), values.json, ({ removed }) => `removed ${cidr} (${removed} ${removed === 1 ? 'entry' : 'entries'})`);
  },
};

export const allowMeCommand: Command = {
  name: 'allow-me',
  summary: 'whitelist the address this machine reaches the agent or rendezvous from',
  help: `Usage: homeport allow-me [--ttl 24h] [--note <text>] [options]

Adds the address the server sees this request come from (/32 or /128) to the agent's whitelist. Through
the rendezvous (--via rendezvous) that is this machine's public address: run it on a laptop in a hotel,
then open the home's link.

Options:
  --ttl <duration>      how long the entry lasts (default the agent's [admin] allowMeTtl, 24h)
  --note <text>         a reminder shown in the list
${CONNECTION_HELP}`,
  async run(argv) {
    const { values } = parseFlags(argv, { ...CONNECTION_FLAGS, ...ENTRY_FLAGS });
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const options = entryOptions(values);
    const { client } = await connect(values);
    return report('allow-me', await client.allowMe(options), values.json, describeAdded);
  },
};

interface ConnectionFlags {
  config?: string;
  via?: string;
  ca?: string;
}

function entryOptions(values: { ttl?: string; note?: string }): { ttl?: string; note?: string } {
  if (values.ttl !== undefined) {
    const ttl = parseDuration(values.ttl);
    if (!ttl.ok) throw new UsageError(`--ttl ${ttl.error}`);
    if (ttl.value <= 0) throw new UsageError('--ttl must be longer than 0, e.g. 24h');
  }
  return { ...(values.ttl !== undefined && { ttl: values.ttl }), ...(values.note !== undefined && { note: values.note }) };
}

function rejectEntryFlags(values: { ttl?: string; note?: string }, action: string): void {
  if (values.ttl !== undefined || values.note !== undefined) throw new UsageError(`--ttl and --note are for add, not ${action}`);
}

/** The client for the flags; a missing key, config or CA is a usage/config error (exit 2). */
async function connect(flags: ConnectionFlags): Promise<{ client: AdminClient }> {
  const via = flags.via ?? 'agent';
  const config = flags.config === undefined ? undefined : await loadAgentConfig(flags.config);
  const key = adminKey(config, via);
  const endpoint = await resolveEndpoint(via, config);
  if (flags.ca !== undefined) {
    endpoint.ca = await readCa(flags.ca, '--ca');
    endpoint.trustHint = `its certificate is not signed by ${flags.ca} (--ca), or it names another host`;
  }
  return { client: new AdminClient({ endpoint, key }) };
}

/** HOMEPORT_ADMIN_KEY wins over [admin] key; the config loader already applied it when there is an [admin] section. */
function adminKey(config: AgentConfig | undefined, via: string): AdminKey {
  if (config?.admin?.key) return config.admin.key;
  const fromEnv = process.env.HOMEPORT_ADMIN_KEY;
  if (fromEnv !== undefined && fromEnv !== '') {
    const parsed = parseAdminKey(fromEnv);
    if (!parsed.ok) throw new UsageError(`HOMEPORT_ADMIN_KEY ${parsed.error}`);
    return parsed.value;
  }
  const program = via === 'rendezvous' ? 'rendezvous.toml, on the rendezvous' : via === 'agent' ? 'agent.toml' : 'the server\'s config';
  const where = config ? ` or [admin] key in ${config.file}` : '';
  throw new UsageError(`no admin key: set HOMEPORT_ADMIN_KEY${where} to the "<id>:<secret>" printed by "homeport keygen --config <${program}>"`);
}

async function resolveEndpoint(via: string, config: AgentConfig | undefined): Promise<AdminEndpoint> {
  if (via === 'agent' || via === 'rendezvous') {
    if (!config) throw new UsageError(`--via ${via} needs --config <agent.toml>`);
    if (!config.admin) {
      throw new ConfigError([`${config.file}: has no [admin] section; add one with listen = "127.0.0.1:7443" (and rendezvousUrl for --via rendezvous), or give --via <https URL of the API>`]);
    }
    return via === 'agent' ? agentEndpoint(config, config.admin) : rendezvousEndpoint(config, config.admin);
  }
  const base = URL.canParse(via) ? new URL(via) : undefined;
  if (base?.protocol !== 'https:') throw new UsageError(`--via must be agent, rendezvous or an https:// URL of an API base, not "${via}"`);
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return { base, trustHint: 'pass the CA that signed its certificate with --ca <pem file>' };
}

const WILDCARD_TO_LOOPBACK: Record<string, string> = { '0.0.0.0': '127.0.0.1', '::': '::1' };

/** The agent's LAN admin listener, with the agent's own certificate: its local CA, or the user's files. */
async function agentEndpoint(config: AgentConfig, admin: NonNullable<AgentConfig['admin']>): Promise<AdminEndpoint> {
  const host = WILDCARD_TO_LOOPBACK[admin.listen.host] ?? admin.listen.host;
  const base = new URL(`https://${urlHost(host)}:${admin.listen.port}/api/`);
  const keyHint = `the agent knows only its own keys: run "homeport keygen --config ${config.file}" and use what it prints`;
  // The certificate names tls.hostnames; the listener may be reached on an address that is not among them.
  const certificateName = config.tls.hostnames.includes(host) ? undefined : config.tls.hostnames[0];
  const named = certificateName === undefined ? {} : { certificateName };
  const listen = formatHostPort(admin.listen);
  if (config.tls.mode === 'files') {
    return { base, ...named, keyHint, trustHint: `the agent serves ${config.tls.certFile}; pass the CA that signed it with --ca <pem file>, or check that the agent listens on ${listen}` };
  }
  const caFile = selfSignedPaths(config.tls.certDir).caCert;
  const ca = await readCa(caFile, 'the agent\'s CA');
  return { base, ca, ...named, keyHint, trustHint: `expected a certificate from the agent's CA ${caFile}; is another program listening on ${listen}?` };
}

async function rendezvousEndpoint(config: AgentConfig, admin: NonNullable<AgentConfig['admin']>): Promise<AdminEndpoint> {
  if (!admin.rendezvousUrl) {
    throw new ConfigError([`${config.file}: [admin] rendezvousUrl is not set; add the rendezvous's web address, e.g. rendezvousUrl = "https://rdv.example.com:8443"`]);
  }
  const base = new URL(`api/agents/${encodeURIComponent(config.agent.name)}/`, admin.rendezvousUrl);
  const keyHint = 'the rendezvous knows only its own keys: run "homeport keygen --config <rendezvous.toml>" on the rendezvous';
  if (admin.ca === undefined) {
    return { base, keyHint, trustHint: `this system does not trust the rendezvous's certificate: set [admin] ca in ${config.file} to the rendezvous's CA (its certDir/ca.pem), or pass --ca <pem file>` };
  }
  // [admin] ca is trusted besides the system's CAs: the rendezvous may switch to a public certificate.
  const ca = [...rootCertificates, await readCa(admin.ca, '[admin] ca')].join('\n');
  return { base, ca, keyHint, trustHint: `its certificate is not signed by ${admin.ca} ([admin] ca in ${config.file}) nor by a CA this system trusts` };
}

async function readCa(file: string, what: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    const fix = what === 'the agent\'s CA' ? 'start the agent once so it creates it, or check [tls] certDir' : 'check the path';
    throw new ConfigError([`${file}: ${what} cannot be read (${code}); ${fix}`]);
  }
}

function report<T>(command: string, answer: Result<T>, json: boolean | undefined, describe: (value: T) => string): number {
  if (!answer.ok) {
    console.error(`homeport ${command}: ${answer.error}`);
    return EXIT.failure;
  }
  console.log(json ? JSON.stringify(answer.value, null, 2) : describe(answer.value));
  return EXIT.ok;
}

function describeAdded(entry: ApiWhitelistEntry): string {
  return `added ${entry.cidr}${entry.note ? ` (${printable(entry.note)})` : ''}, expires ${expiresInWords(entry.expires, Date.now())}${entry.expires ? ` (${entry.expires})` : ''}`;
}

/** The list as a table a person reads: cidr, note, expiry in words, source. */
export function formatTable(entries: ApiWhitelistEntry[], nowMs = Date.now()): string {
  if (entries.length === 0) return 'the whitelist is empty: every client is refused';
  const rows = [['CIDR', 'NOTE', 'EXPIRES', 'SOURCE'], ...entries.map((entry) => [
    entry.cidr, printable(entry.note ?? ''), expiresInWords(entry.expires, nowMs), entry.source,
  ])];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n');
}

function expiresInWords(expires: string | undefined, nowMs: number): string {
  if (expires === undefined) return 'never';
  const left = Date.parse(expires) - nowMs;
  return left > 0 ? `in ${spanInWords(left)}` : 'now';
}

/** A note comes from the server: no control characters reach the terminal. */
function printable(text: string): string {
  return text.replace(/\p{Cc}/gu, '?');
}
