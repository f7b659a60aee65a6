import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAgentConfig, loadAgentConfig } from '../src/config/agent.js';
import { ConfigError } from '../src/config/problems.js';

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

function problemsOf(text: string): string[] {
  try {
    parseAgentConfig(text, '/etc/homeport/agent.toml');
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
    /tls\.mode "acme2" is not one of "selfsigned", "files"/,
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
