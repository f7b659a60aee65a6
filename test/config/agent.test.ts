import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/common/logger.js';
import { parseAgentConfig, loadAgentConfig } from '../../src/config/agent.js';
import { ConfigError } from '../../src/common/config-error.js';

const MINIMAL = `
[agent]
name = "home"
listen = "0.0.0.0:25305"
stateDir = "./state"
[tls]
mode = "selfsigned"
certDir = "./certs"
hostnames = ["nas.example.com", "203.0.113.7"]
[whitelist]
allow = ["127.0.0.1/32", "::1/128"]
[[route]]
host = "*"
path = "/"
target = "http://127.0.0.1:8096"
`;

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseAgentConfig(text, '/etc/homeport/agent.toml', env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail('the config was accepted');
}

test('the issue\'s minimal agent config is accepted, with paths taken from the config folder', () => {
  const config = parseAgentConfig(MINIMAL, '/etc/homeport/agent.toml');
  assert.equal(config.agent.name, 'home');
  assert.deepEqual(config.agent.listen, { host: '0.0.0.0', port: 25305 });
  assert.equal(config.agent.stateDir, '/etc/homeport/state');
  assert.deepEqual(config.tls, { mode: 'selfsigned', certDir: '/etc/homeport/certs', hostnames: ['nas.example.com', '203.0.113.7'] });
  assert.deepEqual(config.whitelist.allow, [{ cidr: '127.0.0.1/32' }, { cidr: '::1/128' }]);
  assert.equal(config.routes.length, 1);
  assert.equal(config.routes[0]!.target.href, 'http://127.0.0.1:8096/');
  assert.equal(config.timeouts.headersMs, 30_000);
  assert.equal(config.timeouts.upstreamResponseMs, 0);
  assert.equal(config.log.level, 'info');
});

test('IPv6 listen, whitelist entries with note and expiry, host bits normalised, timeouts', () => {
  const config = parseAgentConfig(`
[agent]
listen = "[::]:25305"
[whitelist]
allow = ["192.168.1.5/24", { cidr = "2001:db8::/32", note = "office", expires = 2030-01-01T00:00:00Z }]
[[route]]
host = "Jellyfin.Example.com"
path = "/web"
target = "https://192.168.1.10:8920"
insecure = true
[timeouts]
headers = "10s"
idle = "0"
`, '/x/agent.toml');
  assert.deepEqual(config.agent.listen, { host: '::', port: 25305 });
  assert.deepEqual(config.whitelist.allow, [
    { cidr: '192.168.1.0/24' },
    { cidr: '2001:db8::/32', note: 'office', expires: new Date('2030-01-01T00:00:00Z') },
  ]);
  assert.equal(config.routes[0]!.host, 'jellyfin.example.com');
  assert.equal(config.routes[0]!.insecure, true);
  assert.equal(config.timeouts.headersMs, 10_000);
  assert.equal(config.timeouts.idleMs, 0);
  assert.equal(config.tls.certDir, '/x/state/certs');
});

test('every problem is listed at once, each naming the file, the key and the fix', () => {
  const problems = problemsOf(`
[agent]
name = "my home"
listen = "0.0.0.0:99999"
colour = "blue"
[tls]
mode = "acme2"
hostnames = ["nas.example.com", "bad host"]
[whitelist]
allow = ["127.0.0.1/32", "10.0.0.1", "10.0.0.300/8", "127.1", 42]
[[route]]
path = "media"
target = "ftp://nas"
[timeouts]
headers = "soon"
`);
  const expected = [
    /^\/etc\/homeport\/agent\.toml: agent\.name "my home" must be lower-case letters, digits and dashes/,
    /^\/etc\/homeport\/agent\.toml: agent\.listen .*port 99999 is outside 0-65535/,
    /agent\.colour is not a known key; known keys here: name, listen, stateDir/,
    /tls\.mode "acme2" is not one of "selfsigned", "files", "acme"/,
    /tls\.hostnames\[1\] "bad host" is not a host name or IP address/,
    /whitelist\.allow\[2\] "10\.0\.0\.300\/8" /,
    /whitelist\.allow\[3\] "127\.1" /,
    /whitelist\.allow\[4\] must be an address or CIDR in quotes/,
    /route\[0\]\.path "media" must start with "\/"/,
    /route\[0\]\.target "ftp:\/\/nas" must be an http:\/\/ or https:\/\/ URL/,
    /timeouts\.headers "soon" is not a duration; write e\.g\. "500ms"/,
  ];
  for (const pattern of expected) assert.ok(problems.some((p) => pattern.test(p)), `missing ${pattern}\n${problems.join('\n')}`);
  assert.equal(problems.length, expected.length, problems.join('\n'));
});

test('a config without any route, or with files mode but no files, says what to add', () => {
  const problems = problemsOf(`[tls]\nmode = "files"\n`);
  assert.ok(problems.some((p) => /: route is missing; add at least one \[\[route\]\]/.test(p)), problems.join('\n'));
  assert.ok(problems.some((p) => /tls\.certFile is missing; add it/.test(p)));
  assert.ok(problems.some((p) => /tls\.keyFile is missing; add it/.test(p)));
});

test('bad TOML and missing files are one clear line each', async () => {
  assert.match(problemsOf('[agent\nname = 1')[0]!, /^\/etc\/homeport\/agent\.toml: is not valid TOML: /);
  await assert.rejects(loadAgentConfig('/nonexistent/agent.toml'), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.deepEqual(error.problems, ['/nonexistent/agent.toml: does not exist; pass the right path with --config']);
    return true;
  });
});

const RENDEZVOUS = `
[rendezvous]
server = "rdv.example.com:7000"
secret = "0123456789abcdef0123"
`;

test('[rendezvous] reregisterDelay: the longest random delay after the cron time, "0s" for none', () => {
  const table: Array<[line: string, delayMs: number]> = [
    ['', 60_000], // the default: a minute
    ['reregisterDelay = "5m"', 300_000],
    ['reregisterDelay = "0s"', 0],
    ['reregisterDelay = "0"', 0],
    ['reregisterDelay = "1h"', 3_600_000],
  ];
  for (const [line, delayMs] of table) {
    const config = parseAgentConfig(`${MINIMAL}${RENDEZVOUS}${line}\n`, '/etc/homeport/agent.toml', {});
    assert.equal(config.rendezvous?.reregisterDelayMs, delayMs, line);
  }
  const refused: Array<[line: string, problem: RegExp]> = [
    ['reregisterDelay = "2h"', /rendezvous\.reregisterDelay must be at most "1h": the home stays unreachable/],
    ['reregisterDelay = "soon"', /rendezvous\.reregisterDelay "soon" is not a duration; write e\.g\. "500ms"/],
    ['reregisterDelay = 300', /rendezvous\.reregisterDelay must be a duration in quotes such as "30s", not 300/],
    ['reregisterDelay = "-5m"', /rendezvous\.reregisterDelay "-5m" is not a duration/],
  ];
  for (const [line, problem] of refused) {
    assert.deepEqual(problemsOf(`${MINIMAL}${RENDEZVOUS}${line}\n`).map((p) => problem.test(p)), [true], line);
  }
});

test('[rendezvous] heartbeat and secret: the same limits and words as the rendezvous\'s config', () => {
  const refused: Array<[lines: string, env: NodeJS.ProcessEnv, problem: string]> = [
    ['heartbeat = "50ms"', {}, 'rendezvous.heartbeat must be from 100ms to 10m; the default is "5s"'],
    ['heartbeat = "11m"', {}, 'rendezvous.heartbeat must be from 100ms to 10m; the default is "5s"'],
    ['', { HOMEPORT_SECRET: 'tiny-secret' }, 'HOMEPORT_SECRET is too short (11 characters); use at least 16, e.g. from "openssl rand -base64 24"'],
  ];
  for (const [lines, env, problem] of refused) {
    assert.deepEqual(problemsOf(`${MINIMAL}${RENDEZVOUS}${lines}\n`, env), [`/etc/homeport/agent.toml: ${problem}`], lines);
  }
  assert.equal(parseAgentConfig(`${MINIMAL}${RENDEZVOUS}heartbeat = "10m"\n`, '/etc/homeport/agent.toml', {}).rendezvous?.heartbeatMs, 600_000);
});

test('[admin] maxTtl: at most the ten years an admin order can carry, as on the rendezvous', () => {
  assert.deepEqual(problemsOf(`${MINIMAL}[admin]\nmaxTtl = "3651d"\n`), [
    '/etc/homeport/agent.toml: admin.maxTtl must be at most "3650d", the longest lifetime the rendezvous can pass to an agent',
  ]);
});

const KEY_ID = '0123456789ab';
const KEY_SECRET = 'x'.repeat(40) + 'Q_-'; // 43 base64url characters
const KEY = `${KEY_ID}:${KEY_SECRET}`;

test('without [admin] there is no admin config; an empty [admin] gets the defaults', () => {
  assert.equal(parseAgentConfig(MINIMAL, '/etc/homeport/agent.toml', {}).admin, undefined);
  assert.deepEqual(parseAgentConfig(`${MINIMAL}[admin]\n`, '/etc/homeport/agent.toml', {}).admin, {
    listen: { host: '127.0.0.1', port: 7443 },
    allowMeTtlMs: 24 * 3_600_000,
    maxTtlMs: 7 * 24 * 3_600_000,
  });
});

test('[admin] with every key: listen, key, rendezvous URL, CA from the config folder, ttls', () => {
  const admin = parseAgentConfig(`${MINIMAL}
[admin]
listen = "[::]:9443"
key = "${KEY}"
rendezvousUrl = "https://rdv.example.com:8443"
ca = "certs/rdv-ca.pem"
allowMeTtl = "12h"
maxTtl = "30d"
`, '/etc/homeport/agent.toml', {}).admin;
  assert.deepEqual(admin?.listen, { host: '::', port: 9443 });
  assert.deepEqual(admin?.key, { id: KEY_ID, secret: KEY_SECRET });
  assert.equal(admin?.rendezvousUrl?.href, 'https://rdv.example.com:8443/');
  assert.equal(admin?.ca, '/etc/homeport/certs/rdv-ca.pem');
  assert.equal(admin?.allowMeTtlMs, 12 * 3_600_000);
  assert.equal(admin?.maxTtlMs, 30 * 24 * 3_600_000);
});

test('HOMEPORT_ADMIN_KEY wins over admin.key, so the file can stay secret-free', () => {
  const fromEnv = `ffffffffffff:${'A'.repeat(43)}`;
  const withFileKey = `${MINIMAL}[admin]\nkey = "${KEY}"\n`;
  assert.deepEqual(parseAgentConfig(withFileKey, '/x/agent.toml', { HOMEPORT_ADMIN_KEY: fromEnv }).admin?.key, { id: 'ffffffffffff', secret: 'A'.repeat(43) });
  assert.deepEqual(parseAgentConfig(`${MINIMAL}[admin]\n`, '/x/agent.toml', { HOMEPORT_ADMIN_KEY: fromEnv }).admin?.key?.id, 'ffffffffffff');
  assert.deepEqual(parseAgentConfig(withFileKey, '/x/agent.toml', { HOMEPORT_ADMIN_KEY: '' }).admin?.key?.id, KEY_ID, 'an empty variable is unset');
});

test('each [admin] mistake is one line naming the key and the fix, and never shows the secret', () => {
  const table: Array<[lines: string, env: NodeJS.ProcessEnv, problem: RegExp]> = [
    [`key = "${KEY_SECRET}"`, {}, /: admin\.key is not "<id>:<secret>"; /],
    [`key = "${KEY}:extra"`, {}, /: admin\.key is not "<id>:<secret>"; /],
    [`key = "0123456789AB:${KEY_SECRET}"`, {}, /: admin\.key has a bad id \(it must be 12 lower-case hex characters\); /],
    [`key = "0123456789a:${KEY_SECRET}"`, {}, /: admin\.key has a bad id /],
    [`key = "${KEY_ID}:${KEY_SECRET.slice(1)}"`, {}, /: admin\.key has a bad secret \(it must be 43 base64url characters\); /],
    [`key = "${KEY_ID}:${KEY_SECRET.slice(1)}+"`, {}, /: admin\.key has a bad secret /],
    ['key = 42', {}, /: admin\.key must be a string "<id>:<secret>" in quotes; run "homeport keygen --config <file>"/],
    ['', { HOMEPORT_ADMIN_KEY: `${KEY_ID}:${KEY_SECRET}=` }, /: HOMEPORT_ADMIN_KEY has a bad secret /],
    ['listen = "localhost:7443"', {}, /: admin\.listen "localhost:7443": "localhost" is not an IP address; write "0\.0\.0\.0:25305"/],
    ['listen = "127.0.0.1:70000"', {}, /: admin\.listen "127\.0\.0\.1:70000": port 70000 is outside/],
    ['rendezvousUrl = "http://rdv.example.com:8443"', {}, /: admin\.rendezvousUrl "http:\/\/rdv\.example\.com:8443" is not an https:\/\/ URL; write the https address/],
    ['rendezvousUrl = "rdv.example.com"', {}, /: admin\.rendezvousUrl "rdv\.example\.com" is not an https:\/\/ URL/],
    ['rendezvousUrl = "https://rdv.example.com:8443/admin"', {}, /: admin\.rendezvousUrl .* must be scheme, host and port only/],
    ['rendezvousUrl = "https://me:pw@rdv.example.com"', {}, /: admin\.rendezvousUrl .* must be scheme, host and port only/],
    ['ca = "/etc/homeport/rdv-ca.pem"', {}, /: admin\.ca is only used with rendezvousUrl/],
    ['allowMeTtl = "8d"', {}, /: admin\.allowMeTtl "8d" is longer than admin\.maxTtl "7d"; shorten it or raise maxTtl/],
    ['maxTtl = "1h"', {}, /: admin\.allowMeTtl "1d" is longer than admin\.maxTtl "1h"/],
    ['maxTtl = "0"', {}, /: admin\.maxTtl must be longer than 0/],
    ['allowMeTtl = "a day"', {}, /: admin\.allowMeTtl "a day" is not a duration/],
    ['secret = "x"', {}, /: admin\.secret is not a known key; known keys here: listen, key, rendezvousUrl, ca, allowMeTtl, maxTtl/],
  ];
  for (const [lines, env, problem] of table) {
    const problems = problemsOf(`${MINIMAL}[admin]\n${lines}\n`, env);
    assert.equal(problems.length, 1, `${lines}: ${problems.join('\n')}`);
    assert.match(problems[0]!, problem, lines);
    assert.ok(!problems[0]!.includes('\n'));
    assert.ok(!problems[0]!.includes(KEY_SECRET.slice(1)), `the secret leaked: ${problems[0]}`);
    if (/^(admin\.key|HOMEPORT_ADMIN_KEY)$/.test(problems[0]!.split(' ')[1]!)) assert.match(problems[0]!, /homeport keygen --config <file>/, 'says how to get a key');
  }
});

test('the admin key and the rendezvous secret never reach a log line, however the config is logged', async () => {
  const config = parseAgentConfig(`${MINIMAL}${RENDEZVOUS}[admin]\nkey = "${KEY}"\n`, '/etc/homeport/agent.toml', {});
  const file = join(await mkdtemp(join(tmpdir(), 'hp-redact-')), 'agent.log');
  const logger = createLogger({ destination: file });
  logger.info(config, 'as the log object');
  logger.info({ config }, 'nested');
  logger.info({ admin: config.admin, rendezvous: config.rendezvous }, 'sections');
  let text = '';
  // the logger writes asynchronously (and pino's flush callback does not wait for the write)
  for (let waited = 0; waited < 2000 && text.split('\n').length < 4; waited += 20) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    text = await readFile(file, 'utf8').catch(() => '');
  }
  assert.equal(text.trim().split('\n').length, 3, text);
  assert.match(text, /"\[redacted\]"/);
  assert.ok(!text.includes(KEY_SECRET), text);
  assert.ok(!text.includes('0123456789abcdef0123'), text);
});

test('[limits]: connections per address and in all, with defaults; each mistake names the key and the range', () => {
  assert.deepEqual(parseAgentConfig(MINIMAL, '/etc/homeport/agent.toml', {}).limits, { connectionsPerAddress: 256, connections: 4096 });
  const set = parseAgentConfig(`${MINIMAL}[limits]\nconnectionsPerAddress = 32\nconnections = 500\n`, '/etc/homeport/agent.toml', {});
  assert.deepEqual(set.limits, { connectionsPerAddress: 32, connections: 500 });
  const refused: Array<[lines: string, problem: string]> = [
    ['connectionsPerAddress = 0', 'limits.connectionsPerAddress must be a whole number from 1 to 1000000; the default is 256'],
    ['connectionsPerAddress = "many"', 'limits.connectionsPerAddress must be a whole number from 1 to 1000000; the default is 256'],
    ['connections = 2.5', 'limits.connections must be a whole number from 1 to 1000000; the default is 4096'],
    ['connectionsPerAddress = 5000', 'limits.connectionsPerAddress 5000 is more than limits.connections 4096: one address could take every connection; lower it or raise limits.connections'],
    ['perAddress = 10', 'limits.perAddress is not a known key; known keys here: connectionsPerAddress, connections'],
  ];
  for (const [lines, problem] of refused) {
    assert.deepEqual(problemsOf(`${MINIMAL}[limits]\n${lines}\n`), [`/etc/homeport/agent.toml: ${problem}`], lines);
  }
});
