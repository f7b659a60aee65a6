import { KeyStore, keyStorePath, noteProblem, type KeyInfo } from '../admin/key-store.js';
import { SCOPES, parseScopes, type Scope } from '../admin/scopes.js';
import { KEY_ID_PATTERN } from '../common/admin-key.js';
import { createLogger } from '../common/logger.js';
import { parseAgentConfig } from '../config/agent.js';
import { parseRendezvousConfig } from '../config/rendezvous.js';
import { parseTomlTable, readConfigText } from '../config/shared.js';
import { type Command, EXIT, UsageError, parseFlags, requireConfigFlag } from './command.js';

/** Whose key store a config file points at. */
interface KeyStoreOwner {
  program: 'agent' | 'rendezvous';
  file: string;
}

/**
 * An agent config has an [agent] table, a rendezvous config [[agent]] entries; either way the whole config
 * is validated by its program's own parser, so keygen finds the same stateDir the daemon uses.
 */
async function keyStoreOwner(configFile: string): Promise<KeyStoreOwner> {
  const text = await readConfigText(configFile);
  if (Array.isArray(parseTomlTable(text, configFile).agent)) {
    return { program: 'rendezvous', file: keyStorePath(parseRendezvousConfig(text, configFile, process.env).rendezvous.stateDir) };
  }
  return { program: 'agent', file: keyStorePath(parseAgentConfig(text, configFile).agent.stateDir) };
}

/** The store with a logger for warnings only, on stderr: stdout carries the command's own output. */
function openStore(owner: KeyStoreOwner): Promise<KeyStore> {
  return KeyStore.open(owner.file, createLogger({ level: 'warn', destination: 2 }));
}

export const keygenCommand: Command = {
  name: 'keygen',
  summary: 'create an admin API key for the agent or rendezvous of a config (shown once)',
  help: `Usage: homeport keygen --config <agent.toml|rendezvous.toml> [--scopes status:read,whitelist:write] [--note <text>]

Adds a key to that program's key store (stateDir/admin-keys.json, mode 0600) and prints it once as
<id>:<secret> on stdout. Put it in the CLI's config ([admin] key) or HOMEPORT_ADMIN_KEY, or paste it into
the phone page. A running agent or rendezvous accepts it from the next request, without a restart.
A rendezvous key can change the whitelist of every agent on that rendezvous.

Options:
  -c, --config <file>   the agent's or the rendezvous's configuration
  --scopes <list>       ${SCOPES.join(' and/or ')}, comma-separated (default: both)
  --note <text>         what the key is for, shown by "homeport keys list" (e.g. "phone")
  -h, --help            show this help

When run as root (sudo), the key file keeps the owner of the state folder (or of the file it replaces), so
the service user the daemon runs as can still read it.

Exit codes: 0 created, 1 the key store cannot be written, 2 usage or config error (an unreadable or
corrupt key file too).`,
  async run(argv) {
    const { values } = parseFlags(argv, { config: { type: 'string', short: 'c' }, scopes: { type: 'string' }, note: { type: 'string' } });
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const scopes = scopesFlag(values.scopes);
    const problem = values.note === undefined ? undefined : noteProblem(values.note);
    if (problem !== undefined) throw new UsageError(`--note ${problem}`);
    const owner = await keyStoreOwner(requireConfigFlag(values.config));
    const store = await openStore(owner);
    const added = await store.add({ scopes, ...(values.note !== undefined ? { note: values.note } : {}) });
    if (!added.ok) {
      console.error(`homeport keygen: ${added.error}`);
      return EXIT.failure;
    }
    console.log(`${added.value.id}:${added.value.secret}`);
    console.error(`New ${owner.program} admin key ${added.value.id} (${scopes.join(', ')}) stored in ${owner.file}.\n`
      + 'This is the only time the secret is shown: copy the line above now (it cannot be recovered; revoke and create a new key if lost).');
    return EXIT.ok;
  },
};

function scopesFlag(value: string | undefined): Scope[] {
  if (value === undefined) return [...SCOPES];
  const scopes = parseScopes(value);
  if (!scopes.ok) throw new UsageError(`--scopes ${scopes.error}`);
  return scopes.value;
}

export const keysCommand: Command = {
  name: 'keys',
  summary: 'list or revoke the admin API keys of an agent or rendezvous',
  help: `Usage: homeport keys list --config <file>
       homeport keys revoke <id> --config <file>

list     shows each key's id, scopes, creation time and note (never the secret)
revoke   removes the key with this id; the running program refuses it from the next request

Options:
  -c, --config <file>   the agent's or the rendezvous's configuration
  -h, --help            show this help

Exit codes: 0 done, 1 the key store cannot be written, 2 usage or config error (an unreadable or corrupt
key file too), or no key with that id.`,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { config: { type: 'string', short: 'c' } }, true);
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const request = parseKeysAction(positionals);
    const configFile = requireConfigFlag(values.config);
    const store = await openStore(await keyStoreOwner(configFile));
    return request.action === 'list' ? list(store, configFile) : revoke(store, request.id, configFile);
  },
};

function parseKeysAction(positionals: string[]): { action: 'list' } | { action: 'revoke'; id: string } {
  const [action, ...args] = positionals;
  if (action === 'list' && args.length === 0) return { action };
  if (action === 'revoke' && args.length === 1) {
    const id = args[0]!;
    if (!KEY_ID_PATTERN.test(id)) throw new UsageError(`"${id}" is not a key id (12 hex digits, the part before ":" in <id>:<secret>)`);
    return { action, id };
  }
  if (action === 'revoke') throw new UsageError(args.length === 0 ? 'name the key to revoke: homeport keys revoke <id>' : `unexpected argument "${args[1]}"`);
  if (action === 'list') throw new UsageError(`unexpected argument "${args[0]}"`);
  throw new UsageError(action === undefined ? 'say "list" or "revoke <id>"' : `unknown action "${action}": use "list" or "revoke <id>"`);
}

async function list(store: KeyStore, configFile: string): Promise<number> {
  const keys = await store.list();
  if (keys.length === 0) {
    console.log(`no admin keys in ${store.file}; create one with: homeport keygen --config ${configFile}`);
    return EXIT.ok;
  }
  console.log(formatKeyTable(keys));
  return EXIT.ok;
}

async function revoke(store: KeyStore, id: string, configFile: string): Promise<number> {
  const revoked = await store.revoke(id);
  if (!revoked.ok) {
    console.error(`homeport keys revoke: ${revoked.error}`);
    return EXIT.failure;
  }
  if (revoked.value === undefined) {
    console.error(`homeport keys revoke: no key ${id} in ${store.file}; "homeport keys list --config ${configFile}" shows the ids`);
    return EXIT.usage;
  }
  console.log(`revoked key ${id}${revoked.value.note ? ` (${revoked.value.note})` : ''}; requests signed with it are refused from now on`);
  return EXIT.ok;
}

/** One key a line under a header, columns aligned. */
export function formatKeyTable(keys: KeyInfo[]): string {
  const rows = [['ID', 'SCOPES', 'CREATED', 'NOTE'], ...keys.map((key) => [key.id, key.scopes.join(','), key.created.replace(/\.\d+Z$/, 'Z'), key.note ?? ''])];
  const widths = [0, 1, 2].map((column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column < 3 ? cell.padEnd(widths[column]!) : cell)).join('  ').trimEnd()).join('\n');
}
