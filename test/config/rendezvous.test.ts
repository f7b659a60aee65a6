import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/common/config-error.js';
import { loadRendezvousConfig, parseRendezvousConfig } from '../../src/config/rendezvous.js';

const FILE = '/etc/homeport/rendezvous.toml';
const SECRET = 'correct-horse-battery-staple';

/** The example from the issue. */
const ISSUE_EXAMPLE = `
[rendezvous]
control = "0.0.0.0:7000"
http = "0.0.0.0:8443"
stateDir = "./state"
[tls]
mode = "selfsigned"
certDir = "./certs"
[[agent]]
name = "home"
secret = "${SECRET}"
`;

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseRendezvousConfig(text, FILE, env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail('the config was accepted');
}

test('the issue\'s rendezvous.toml is accepted with its defaults, paths taken from the config folder', () => {
  const config = parseRendezvousConfig(ISSUE_EXAMPLE, FILE);
  assert.deepEqual(config.rendezvous, {
    control: { host: '0.0.0.0', port: 7000 },
    http: { host: '0.0.0.0', port: 8443 },
    stateDir: '/etc/homeport/state',
    heartbeatMs: 5000,
    probeIntervalMs: 30_000,
    probeTimeoutMs: 5000,
    redirectAllow: [],
  });
  assert.deepEqual(config.tls, { mode: 'selfsigned', certDir: '/etc/homeport/certs', hostnames: ['localhost', '127.0.0.1', '::1'] });
  assert.deepEqual(config.agents, [{ name: 'home', secret: SECRET, mode: 'direct' }]);
  assert.deepEqual(config.admin, { allowMeTtlMs: 24 * 3_600_000, maxTtlMs: 7 * 24 * 3_600_000 });
  assert.equal(config.log.level, 'info');
});

test('[admin] sets the allow-me lifetime and the longest ttl; each mistake names its key', () => {
  const agent = `[[agent]]\nname = "home"\nsecret = "${SECRET}"\n`;
  assert.deepEqual(parseRendezvousConfig(`${agent}[admin]\nallowMeTtl = "2h"\nmaxTtl = "30d"\n`, FILE).admin, { allowMeTtlMs: 7_200_000, maxTtlMs: 30 * 86_400_000 });
  const cases: [text: string, problem: string][] = [
    ['allowMeTtl = "8d"', 'admin.allowMeTtl "8d" is longer than admin.maxTtl "7d"; shorten it or raise maxTtl'],
    ['maxTtl = "1h"', 'admin.allowMeTtl "1d" is longer than admin.maxTtl "1h"; shorten it or raise maxTtl'],
    ['maxTtl = "3651d"', 'admin.maxTtl must be at most "3650d", the longest lifetime the rendezvous can pass to an agent'],
    ['maxTtl = "0"', 'admin.maxTtl must be longer than 0'],
    ['allowMeTtl = 3600', 'admin.allowMeTtl must be a duration in quotes such as "30s", not 3600'],
    ['listen = "127.0.0.1:7443"', 'admin.listen is not a known key; known keys here: allowMeTtl, maxTtl'],
  ];
  for (const [line, problem] of cases) assert.deepEqual(problemsOf(`${agent}[admin]\n${line}\n`), [`${FILE}: ${problem}`], line);
});

test('an [[agent]] alone is enough; certificates default to stateDir/certs', () => {
  const config = parseRendezvousConfig(`[[agent]]\nname = "home"\nsecret = "${SECRET}"\n`, FILE);
  assert.deepEqual(config.rendezvous.control, { host: '0.0.0.0', port: 7000 });
  assert.equal(config.tls.certDir, '/etc/homeport/state/certs');
});

test('durations, IPv6 listeners, redirectAllow normalised, several agents, secretEnv', () => {
  const config = parseRendezvousConfig(`
[rendezvous]
control = "[::]:7000"
http = "127.0.0.1:443"
heartbeat = "2s"
probeInterval = "1m"
probeTimeout = "3s"
redirectAllow = ["192.0.2.77/24", "2001:db8::1/32", "198.51.100.9", "::ffff:10.1.2.3/104"]
[tls]
mode = "files"
certFile = "tls/cert.pem"
keyFile = "/etc/ssl/key.pem"
hostnames = ["rv.example.com"]
[[agent]]
name = "home"
secret = "${SECRET}"
[[agent]]
name = "cottage-2"
secretEnv = "HOMEPORT_SECRET_COTTAGE"
[log]
level = "debug"
`, FILE, { HOMEPORT_SECRET_COTTAGE: 'from-the-environment-42' });
  assert.deepEqual(config.rendezvous.control, { host: '::', port: 7000 });
  assert.equal(config.rendezvous.heartbeatMs, 2000);
  assert.equal(config.rendezvous.probeIntervalMs, 60_000);
  assert.equal(config.rendezvous.probeTimeoutMs, 3000);
  assert.deepEqual(config.rendezvous.redirectAllow, ['192.0.2.0/24', '2001:db8::/32', '198.51.100.9/32', '10.0.0.0/8']);
  assert.deepEqual(config.tls, {
    mode: 'files', certDir: '/etc/homeport/state/certs', hostnames: ['rv.example.com'],
    certFile: '/etc/homeport/tls/cert.pem', keyFile: '/etc/ssl/key.pem',
  });
  assert.deepEqual(config.agents, [{ name: 'home', secret: SECRET, mode: 'direct' }, { name: 'cottage-2', secret: 'from-the-environment-42', mode: 'direct' }]);
  assert.equal(config.log.level, 'debug');
});

test('every problem is listed at once, each with file, key and fix', () => {
  const problems = problemsOf(`
[rendezvous]
control = "7000"
http = "0.0.0.0:70000"
heartbeat = "5 seconds"
probeInterval = "0"
redirectAllow = ["10.0.0.300/8", "010.0.0.1", "2001:db8::/129", "127.1"]
colour = "blue"
[tls]
mode = "letsencrypt"
[[agent]]
name = "Home"
secret = "short"
[[agent]]
name = "cabin"
[[agent]]
name = "cabin"
secret = "${SECRET}"
secretEnv = "X"
[[agent]]
name = "shed"
secretEnv = "HOMEPORT_SECRET_SHED"
[log]
level = "loud"
`);
  const expected = [
    /rendezvous\.colour is not a known key/,
    /rendezvous\.control "7000" is not host:port/,
    /rendezvous\.http .*port 70000 is outside/,
    /rendezvous\.heartbeat "5 seconds" is not a duration/,
    /rendezvous\.probeInterval must be longer than 0/,
    /rendezvous\.redirectAllow\[0\] "10\.0\.0\.300\/8" is not an IP or CIDR: octet 300 is over 255; write e\.g\. "192\.168\.1\.0\/24"/,
    /rendezvous\.redirectAllow\[1\] "010\.0\.0\.1" is not an IP or CIDR: octet "010" has a leading zero, .*; write octets without leading zeros$/,
    /rendezvous\.redirectAllow\[2\] "2001:db8::\/129" has prefix \/129, but an IPv6 prefix is \/0 to \/128$/,
    /rendezvous\.redirectAllow\[3\] "127\.1" is not an IP or CIDR: 2 parts where IPv4 has 4; write all four octets/,
    /tls\.mode "letsencrypt" is not one of "selfsigned", "files", "acme"/,
    /agent\[0\]\.name "Home" must be lower-case letters/,
    /agent\[0\]\.secret is too short \(5 characters\); use at least 16/,
    /agent\[1\]\.secret is missing; add secret = /,
    /agent\[2\]\.name "cabin" is listed twice/,
    /agent\[2\]\.secret and secretEnv are both set; keep one/,
    /agent\[3\]\.secretEnv names the environment variable HOMEPORT_SECRET_SHED, which is not set/,
    /log\.level "loud" is not one of/,
  ];
  for (const pattern of expected) {
    assert.ok(problems.some((problem) => pattern.test(problem)), `no problem matches ${pattern}:\n${problems.join('\n')}`);
  }
  assert.equal(problems.length, expected.length, problems.join('\n'));
  assert.ok(problems.every((problem) => problem.startsWith(`${FILE}: `) && !problem.includes('\n')));
  assert.ok(!problems.some((problem) => problem.includes('"short"')), 'a secret, even a bad one, is never echoed');
});

test('a secret from the environment that is too short is refused without echoing it', () => {
  const problems = problemsOf('[[agent]]\nname = "home"\nsecretEnv = "S"\n', { S: 'tiny-secret' });
  assert.deepEqual(problems, [`${FILE}: agent[0].secretEnv is too short (11 characters); use at least 16, e.g. from "openssl rand -base64 24"`]);
});

test('no agent, same address for both ports, heartbeat out of range, TLS files missing', () => {
  const problems = problemsOf(`
[rendezvous]
control = "0.0.0.0:7000"
http = "0.0.0.0:7000"
heartbeat = "50ms"
[tls]
mode = "files"
`);
  assert.deepEqual(problems, [
    `${FILE}: rendezvous.http uses the same address as rendezvous.control; give them different ports`,
    `${FILE}: rendezvous.heartbeat must be from 100ms to 10m; the default is "5s"`,
    `${FILE}: tls.certFile is missing; add it`,
    `${FILE}: tls.keyFile is missing; add it`,
    `${FILE}: agent is missing; add at least one [[agent]] with name and secret (or secretEnv)`,
  ]);
});

test('loadRendezvousConfig reads the file and the real environment; a missing file is one clear line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hp-rv-config-'));
  try {
    const file = join(dir, 'rendezvous.toml');
    await writeFile(file, '[[agent]]\nname = "home"\nsecretEnv = "HOMEPORT_TEST_SECRET"\n');
    const config = await loadRendezvousConfig(file, { HOMEPORT_TEST_SECRET: SECRET });
    assert.equal(config.agents[0]!.secret, SECRET);
    assert.equal(config.rendezvous.stateDir, join(dir, 'state'));
    await assert.rejects(loadRendezvousConfig(join(dir, 'nope.toml')), (error: ConfigError) =>
      error.problems[0] === `${join(dir, 'nope.toml')}: does not exist; pass the right path with --config`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
