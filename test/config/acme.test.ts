import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../src/common/config-error.js';
import { parseAgentConfig } from '../../src/config/agent.js';
import { parseRendezvousConfig } from '../../src/config/rendezvous.js';

const FILE = '/etc/homeport/agent.toml';
const AGENT = `
[agent]
name = "home"
[whitelist]
allow = ["127.0.0.1/32"]
[[route]]
host = "*"
path = "/"
target = "http://127.0.0.1:8096"
`;

function tlsOf(tls: string) {
  return parseAgentConfig(`${AGENT}\n${tls}`, FILE).tls;
}

function problemsOf(tls: string): string[] {
  try {
    parseAgentConfig(`${AGENT}\n${tls}`, FILE);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems;
  }
  assert.fail('the config was accepted');
}

test('[tls.acme] with every key: names resolved, paths from the config folder, durations in ms', () => {
  assert.deepEqual(tlsOf(`
[tls]
mode = "acme"
certDir = "certs"
[tls.acme]
directory = "letsencrypt-staging"
email = "me@example.com"
hostnames = ["Home.Example.com", "*.home.example.com"]
challenge = "dns-01"
dnsHook = "hooks/dns"
propagationTimeout = "2m"
nameservers = ["127.0.0.1:8053", "192.0.2.53", "2001:db8::53"]
directoryCa = "pebble.pem"
`), {
    mode: 'acme',
    certDir: '/etc/homeport/certs',
    hostnames: ['home.example.com', '*.home.example.com'],
    acme: {
      directory: 'https://acme-staging-v02.api.letsencrypt.org/directory',
      email: 'me@example.com',
      hostnames: ['home.example.com', '*.home.example.com'],
      challenge: 'dns-01',
      dnsHook: '/etc/homeport/hooks/dns',
      propagationTimeoutMs: 120_000,
      nameservers: ['127.0.0.1:8053', '192.0.2.53:53', '[2001:db8::53]:53'],
      directoryCa: '/etc/homeport/pebble.pem',
    },
  });
});

test('defaults: Let\'s Encrypt production, dns-01, 5 minutes of propagation; http-01 needs no hook', () => {
  const dns = tlsOf('[tls]\nmode = "acme"\n[tls.acme]\nhostnames = ["home.example.com"]\ndnsHook = "/h"\n');
  assert.ok(dns.mode === 'acme');
  assert.equal(dns.acme.directory, 'https://acme-v02.api.letsencrypt.org/directory');
  assert.equal(dns.acme.challenge, 'dns-01');
  assert.equal(dns.acme.propagationTimeoutMs, 300_000);
  const http = tlsOf('[tls]\nmode = "acme"\n[tls.acme]\nhostnames = ["home.example.com"]\nchallenge = "http-01"\ndirectory = "https://ca.example.net/dir"\n');
  assert.ok(http.mode === 'acme');
  assert.equal(http.acme.dnsHook, undefined);
  assert.equal(http.acme.directory, 'https://ca.example.net/dir');
});

test('the rendezvous reads the same [tls.acme]', () => {
  const config = parseRendezvousConfig(`
[rendezvous]
acmeHttp = "0.0.0.0:80"
[tls]
mode = "acme"
[tls.acme]
hostnames = ["rv.example.com"]
challenge = "http-01"
[[agent]]
name = "home"
secret = "0123456789abcdef0123"
`, '/etc/homeport/rendezvous.toml');
  assert.equal(config.tls.mode, 'acme');
  assert.deepEqual(config.tls.hostnames, ['rv.example.com']);
});

const CASES: Array<{ name: string; tls: string; problem: RegExp }> = [
  { name: 'no hostnames', tls: '[tls.acme]\ndnsHook = "/h"', problem: /tls\.acme\.hostnames is missing; add a list/ },
  { name: 'empty hostnames', tls: '[tls.acme]\ndnsHook = "/h"\nhostnames = []', problem: /tls\.acme\.hostnames is empty; list the DNS names clients use/ },
  { name: 'an IP address', tls: '[tls.acme]\ndnsHook = "/h"\nhostnames = ["203.0.113.7"]', problem: /tls\.acme\.hostnames\[0\] "203\.0\.113\.7" is an IP address; ACME certificates name DNS names only/ },
  { name: 'a single label', tls: '[tls.acme]\ndnsHook = "/h"\nhostnames = ["nas"]', problem: /tls\.acme\.hostnames\[0\] "nas" is not a DNS name such as "home\.example\.com"/ },
  { name: 'a wildcard with http-01', tls: '[tls.acme]\nchallenge = "http-01"\nhostnames = ["*.example.com"]', problem: /tls\.acme\.hostnames\[0\] "\*\.example\.com" is a wildcard, which only dns-01 can prove; set challenge = "dns-01"/ },
  { name: 'dns-01 without a hook', tls: '[tls.acme]\nhostnames = ["home.example.com"]', problem: /tls\.acme\.dnsHook is missing; dns-01 needs a script that sets the TXT record/ },
  { name: 'an unknown challenge', tls: '[tls.acme]\nchallenge = "tls-alpn-01"\nhostnames = ["home.example.com"]', problem: /tls\.acme\.challenge "tls-alpn-01" is not one of "dns-01", "http-01"/ },
  { name: 'an http directory', tls: '[tls.acme]\ndirectory = "http://ca.example.net/dir"\nhostnames = ["home.example.com"]\ndnsHook = "/h"', problem: /tls\.acme\.directory "http:\/\/ca\.example\.net\/dir" is neither "letsencrypt", "letsencrypt-staging" nor an https:\/\/ directory URL/ },
  { name: 'a mistyped directory name', tls: '[tls.acme]\ndirectory = "letsencrypt-stage"\nhostnames = ["home.example.com"]\ndnsHook = "/h"', problem: /tls\.acme\.directory "letsencrypt-stage" is neither/ },
  { name: 'a bad e-mail', tls: '[tls.acme]\nemail = "me"\nhostnames = ["home.example.com"]\ndnsHook = "/h"', problem: /tls\.acme\.email "me" is not an e-mail address/ },
  { name: 'a bad duration', tls: '[tls.acme]\npropagationTimeout = "soon"\nhostnames = ["home.example.com"]\ndnsHook = "/h"', problem: /tls\.acme\.propagationTimeout "soon" is not a duration/ },
  { name: 'a name server by name', tls: '[tls.acme]\nnameservers = ["ns1.example.com"]\nhostnames = ["home.example.com"]\ndnsHook = "/h"', problem: /tls\.acme\.nameservers\[0\] "ns1\.example\.com" is not an IP address with an optional port/ },
  { name: 'an unknown key', tls: '[tls.acme]\ndnshook = "/h"\nhostnames = ["home.example.com"]', problem: /tls\.acme\.dnshook is not a known key; known keys here: directory, email, hostnames, challenge, dnsHook/ },
];

for (const { name, tls, problem } of CASES) {
  test(`[tls.acme] problem: ${name}`, () => {
    const problems = problemsOf(`[tls]\nmode = "acme"\n${tls}\n`);
    assert.ok(problems.some((line) => problem.test(line) && line.startsWith(`${FILE}: tls.`)), `missing ${problem}\n${problems.join('\n')}`);
  });
}

test('keys of another mode are pointed out', () => {
  assert.ok(problemsOf('[tls]\nmode = "selfsigned"\n[tls.acme]\nhostnames = ["a.example.com"]\n')
    .some((line) => /tls\.acme is only used with mode = "acme"; remove it or set mode = "acme"/.test(line)));
  assert.ok(problemsOf('[tls]\nmode = "acme"\nhostnames = ["a.example.com"]\n[tls.acme]\nhostnames = ["a.example.com"]\ndnsHook = "/h"\n')
    .some((line) => /tls\.hostnames is not used with mode = "acme"; list the names in tls\.acme\.hostnames instead/.test(line)));
});
