import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ApiWhitelistEntry } from '../../src/admin/api-types.js';
import { formatTable } from '../../src/cli/whitelist.js';
import { runCli, type CliRun } from '../helpers/cli.js';
import { startLoopbackPair, writeAgentConfig, type LoopbackAgentOptions, type LoopbackPair } from '../helpers/loopback-pair.js';
import { freePort } from '../helpers/ports.js';

/**
 * `homeport whitelist` and `homeport allow-me` as a user runs them: a real rendezvous and a real agent on
 * loopback, keys made with `homeport keygen`, the key passed in HOMEPORT_ADMIN_KEY.
 */

let pair: LoopbackPair;
const keys = { agent: '', rendezvous: '', readOnly: '' };
let httpPort: number;

async function keygen(config: string, scopes?: string): Promise<string> {
  const run = await runCli(['keygen', '--config', join(pair.dir, config), ...(scopes ? ['--scopes', scopes] : [])]);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout.trim();
}

/** `homeport <args> --config agent.toml` with this key. */
function homeport(args: string[], key: string | undefined, config = 'agent.toml'): Promise<CliRun> {
  return runCli([...args, '--config', join(pair.dir, config)], { HOMEPORT_ADMIN_KEY: key ?? '' });
}

before(async () => {
  const adminPort = await freePort();
  const agentWithAdmin = (lines: string): LoopbackAgentOptions => ({
    allow: '[{ cidr = "192.168.1.0/24", note = "LAN" }, "127.0.0.1/32"]',
    admin: { port: adminPort, lines },
  });
  pair = await startLoopbackPair({ prefix: 'hp-admin-cli-', agent: agentWithAdmin('ca = "./rv/certs/ca.pem"\n') });
  await writeAgentConfig(pair, 'agent-no-ca.toml', agentWithAdmin(''));
  httpPort = pair.ports.http;
  keys.agent = await keygen('agent.toml');
  keys.rendezvous = await keygen('rendezvous.toml');
  keys.readOnly = await keygen('agent.toml', 'status:read');
});

after(() => pair?.stop());

function listed(run: CliRun): ApiWhitelistEntry[] {
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout) as ApiWhitelistEntry[];
}

describe('round trips', () => {
  test('via the agent: add, list as a table, remove', async () => {
    const added = await homeport(['whitelist', 'add', '203.0.113.7', '--ttl', '2h', '--note', 'hotel wifi'], keys.agent);
    assert.equal(added.code, 0, added.stderr);
    assert.match(added.stdout, /^added 203\.0\.113\.7\/32 \(hotel wifi\), expires in (2 h|1 h 59 min) \(\d{4}-\d\d-\d\dT[\d:.]+Z\)\n$/);

    const table = await homeport(['whitelist', 'list'], keys.agent);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^CIDR\s+NOTE\s+EXPIRES\s+SOURCE$/);
    assert.ok(lines.some((line) => /^192\.168\.1\.0\/24\s+LAN\s+never\s+config$/.test(line)), table.stdout);
    assert.ok(lines.some((line) => /^203\.0\.113\.7\/32\s+hotel wifi\s+in (2 h|1 h 59 min)\s+runtime$/.test(line)), table.stdout);

    const removed = await homeport(['whitelist', 'remove', '203.0.113.7/32'], keys.agent);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout, 'removed 203.0.113.7/32 (1 entry)\n');
    const after = listed(await homeport(['whitelist', 'list', '--json'], keys.agent));
    assert.equal(after.some((entry) => entry.cidr === '203.0.113.7/32'), false);
  });

  test('via the rendezvous: allow-me adds the caller\'s address, the agent lists it, remove takes it away', async () => {
    const me = await homeport(['allow-me', '--via', 'rendezvous', '--ttl', '1h', '--json'], keys.rendezvous);
    assert.equal(me.code, 0, me.stderr);
    const entry = JSON.parse(me.stdout) as ApiWhitelistEntry;
    assert.equal(entry.cidr, '127.0.0.1/32');
    assert.equal(entry.source, 'runtime');

    const onTheAgent = listed(await homeport(['whitelist', 'list', '--json'], keys.agent));
    assert.ok(onTheAgent.some((listedEntry) => listedEntry.cidr === '127.0.0.1/32' && listedEntry.source === 'runtime'));

    const removed = await homeport(['whitelist', 'remove', '127.0.0.1/32', '--via', 'rendezvous'], keys.rendezvous);
    assert.equal(removed.code, 0, removed.stderr);
    const afterwards = listed(await homeport(['whitelist', 'list', '--json', '--via', 'rendezvous'], keys.rendezvous));
    assert.deepEqual(afterwards.filter((listedEntry) => listedEntry.source === 'runtime'), []);
  });

  test('an explicit API URL with --ca', async () => {
    const run = await runCli(['whitelist', 'list', '--json', '--via', `https://127.0.0.1:${httpPort}/api/agents/home/`, '--ca', join(pair.rendezvousState, 'certs', 'ca.pem')], { HOMEPORT_ADMIN_KEY: keys.rendezvous });
    assert.ok(listed(run).some((entry) => entry.cidr === '192.168.1.0/24'));
  });
});

describe('errors a user can act on', () => {
  test('no key: exit 2, says how to make one', async () => {
    const run = await homeport(['whitelist', 'list'], undefined);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^homeport whitelist: no admin key: set HOMEPORT_ADMIN_KEY or \[admin\] key in .*agent\.toml to the "<id>:<secret>" printed by "homeport keygen --config <agent\.toml>"/);
  });

  test('an agent key sent to the rendezvous: 401 naming the key and the rendezvous\'s keygen', async () => {
    const run = await homeport(['whitelist', 'list', '--via', 'rendezvous'], keys.agent);
    assert.equal(run.code, 1);
    const id = keys.agent.split(':')[0]!;
    assert.match(run.stderr, new RegExp(`^homeport whitelist: 127\\.0\\.0\\.1:${httpPort} refused key ${id}: unknown key .*homeport keygen --config <rendezvous\\.toml>" on the rendezvous\\n$`));
  });

  test('a read-only key cannot add: 403 with the missing scope', async () => {
    const run = await homeport(['whitelist', 'add', '203.0.113.9'], keys.readOnly);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /may not do this on 127\.0\.0\.1:\d+: .*lacks the scope whitelist:write/);
  });

  test('nothing listening: the URL and ECONNREFUSED', async () => {
    const port = await freePort();
    const run = await runCli(['allow-me', '--via', `https://127.0.0.1:${port}/api/`], { HOMEPORT_ADMIN_KEY: keys.agent });
    assert.equal(run.code, 1);
    assert.equal(run.stderr, `homeport allow-me: cannot reach https://127.0.0.1:${port}/api/ (ECONNREFUSED); is the server running and listening there?\n`);
  });

  test('the rendezvous\'s certificate without [admin] ca: which CA to set', async () => {
    const run = await homeport(['whitelist', 'list', '--via', 'rendezvous'], keys.rendezvous, 'agent-no-ca.toml');
    assert.equal(run.code, 1);
    assert.match(run.stderr, /cannot verify the TLS certificate of https:\/\/127\.0\.0\.1:\d+\/api\/agents\/home\/ \([A-Z_]+\): .*set \[admin\] ca in .*agent-no-ca\.toml to the rendezvous's CA/);
  });

  test('usage mistakes exit 2 before anything is sent', async () => {
    const cases: [string[], RegExp][] = [
      [['whitelist', 'add', '10.0.0.300'], /"10\.0\.0\.300" is not an IP or CIDR/],
      [['whitelist', 'add', '10.0.0.1', '--ttl', 'soon'], /--ttl "soon" is not a duration/],
      [['whitelist', 'remove'], /remove needs an address or CIDR/],
      [['whitelist', 'list', '--note', 'x'], /--ttl and --note are for add, not list/],
      [['whitelist', 'purge'], /say what to do: list, add <cidr> or remove <cidr>/],
      [['allow-me', '--via', 'http://127.0.0.1:1/api/'], /--via must be agent, rendezvous or an https:\/\/ URL/],
    ];
    for (const [args, message] of cases) {
      const run = await homeport(args, keys.agent);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
    }
  });
});

test('formatTable: aligned columns, relative expiry, a note without control characters', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const table = formatTable([
    { cidr: '192.168.1.0/24', note: 'LAN', source: 'config' },
    { cidr: '2001:db8::/48', note: 'evil\u001b[2Jnote', expires: '2026-01-02T11:59:00Z', source: 'runtime' },
  ], now);
  assert.equal(table, [
    'CIDR            NOTE          EXPIRES         SOURCE',
    '192.168.1.0/24  LAN           never           config',
    '2001:db8::/48   evil?[2Jnote  in 23 h 59 min  runtime',
  ].join('\n'));
  assert.equal(formatTable([], now), 'the whitelist is empty: every client is refused');
});
