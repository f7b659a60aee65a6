import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../src/common/config-error.js';
import { parseRendezvousConfig } from '../../src/config/rendezvous.js';

const FILE = '/etc/homeport/rendezvous.toml';
const SECRET = 'correct-horse-battery-staple';
const agent = (name: string, lines = ''): string => `[[agent]]\nname = "${name}"\nsecret = "${SECRET}"\n${lines}\n`;
const ACME_HTTP = '[rendezvous]\nacmeHttp = "0.0.0.0:80"\n';

function problemsOf(text: string): string[] {
  try {
    parseRendezvousConfig(text, FILE);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.problems.map((problem) => problem.slice(`${FILE}: `.length));
  }
  assert.fail(`the config was accepted:\n${text}`);
}

test('acmeHttp is off by default and takes a listen address, port 0 included', () => {
  const cases: [settings: string, expected: object | undefined][] = [
    ['', undefined],
    ['[rendezvous]\nacmeHttp = "0.0.0.0:80"', { host: '0.0.0.0', port: 80 }],
    ['[rendezvous]\nacmeHttp = "127.0.0.1:0"', { host: '127.0.0.1', port: 0 }],
    ['[rendezvous]\nacmeHttp = "[::]:80"', { host: '::', port: 80 }],
  ];
  for (const [settings, expected] of cases) {
    const config = parseRendezvousConfig(`${settings}\n${agent('home')}`, FILE);
    assert.deepEqual(config.rendezvous.acmeHttp, expected, settings);
    if (expected === undefined) assert.equal('acmeHttp' in config.rendezvous, false);
  }
});

test('acmeHostnames are lower-cased and kept per agent; an agent without them has no key', () => {
  const config = parseRendezvousConfig(`${ACME_HTTP}${agent('home', 'acmeHostnames = ["Home.Example.com", "nas.example.org"]')}${agent('cabin')}`, FILE);
  assert.deepEqual(config.agents.map((entry) => entry.acmeHostnames), [['home.example.com', 'nas.example.org'], undefined]);
  assert.equal('acmeHostnames' in config.agents[1]!, false);
});

test('each acmeHttp and acmeHostnames mistake is one line naming the key and the fix', () => {
  const cases: [text: string, problems: string[]][] = [
    ['[rendezvous]\nacmeHttp = "80"\n' + agent('home'), ['rendezvous.acmeHttp "80" is not host:port; write "0.0.0.0:25305", "127.0.0.1:25305" or "[::]:25305"']],
    ['[rendezvous]\nacmeHttp = 80\n' + agent('home'), ['rendezvous.acmeHttp must be a non-empty string (in quotes), not 80']],
    ['[rendezvous]\nacmeHttp = "example.com:80"\n' + agent('home'), ['rendezvous.acmeHttp "example.com:80": "example.com" is not an IP address; write "0.0.0.0:25305", "127.0.0.1:25305" or "[::]:25305"']],
    ['[rendezvous]\nhttp = "0.0.0.0:80"\nacmeHttp = "0.0.0.0:80"\n' + agent('home'), ['rendezvous.acmeHttp uses the same port as rendezvous.http; give each listener its own port']],
    ['[rendezvous]\ncontrol = "127.0.0.1:7000"\nacmeHttp = "0.0.0.0:7000"\n' + agent('home'), ['rendezvous.acmeHttp uses the same port as rendezvous.control; give each listener its own port']],
    ['[rendezvous]\nacmeHttp = "0.0.0.0:3478"\n' + agent('home'), ['stun.listen uses the same port as rendezvous.acmeHttp; give each listener its own port']],
    [ACME_HTTP + agent('home', 'relay = "0.0.0.0:80"'), ['agent[0].relay uses the same port as rendezvous.acmeHttp; give each listener its own port']],
    [agent('home', 'acmeHostnames = ["home.example.com"]'), ['rendezvous.acmeHttp is missing; agent "home" has acmeHostnames, which are answered there: add acmeHttp = "0.0.0.0:80" to [rendezvous] (the CA asks on port 80)']],
    [ACME_HTTP + agent('home', 'acmeHostnames = "home.example.com"'), ['agent[0].acmeHostnames must be a list such as ["a", "b"], not "home.example.com"']],
    [ACME_HTTP + agent('home', 'acmeHostnames = []'), ['agent[0].acmeHostnames is empty; list the names this agent gets certificates for, e.g. ["home.example.com"], or remove it']],
    [ACME_HTTP + agent('home', 'acmeHostnames = [""]'), ['agent[0].acmeHostnames[0] must be a non-empty string, not ""']],
    [ACME_HTTP + agent('home', 'acmeHostnames = ["203.0.113.7"]'), ['agent[0].acmeHostnames[0] "203.0.113.7" is an IP address; HTTP-01 through the rendezvous is for DNS names such as "home.example.com"']],
    [ACME_HTTP + agent('home', 'acmeHostnames = ["::1"]'), ['agent[0].acmeHostnames[0] "::1" is an IP address; HTTP-01 through the rendezvous is for DNS names such as "home.example.com"']],
    [ACME_HTTP + agent('home', 'acmeHostnames = ["*.example.com"]'), ['agent[0].acmeHostnames[0] "*.example.com" is a wildcard, which only dns-01 can prove; remove it here and use challenge = "dns-01" on the agent']],
    [ACME_HTTP + agent('home', 'acmeHostnames = ["localhost"]'), ['agent[0].acmeHostnames[0] "localhost" is not a DNS name such as "home.example.com"']],
    [ACME_HTTP + agent('home', 'acmeHostnames = ["home.example.com."]'), ['agent[0].acmeHostnames[0] "home.example.com." is not a DNS name such as "home.example.com"']],
    [ACME_HTTP + agent('home', 'acmeHostnames = ["home_1.example.com"]'), ['agent[0].acmeHostnames[0] "home_1.example.com" is not a DNS name such as "home.example.com"']],
    [ACME_HTTP + agent('home', 'acmeHostnames = ["home.example.com", "HOME.example.com"]'), ['agent[0].acmeHostnames[1] "HOME.example.com" is listed twice; remove one']],
    [ACME_HTTP + agent('home', 'acmeHostnames = ["home.example.com"]') + agent('cabin', 'acmeHostnames = ["home.example.com"]'),
      ['agent[1].acmeHostnames[0] "home.example.com" is in agent[0].acmeHostnames too; a name belongs to one agent, remove it from one of them']],
    [ACME_HTTP + '[tls]\nhostnames = ["rv.example.com"]\n' + agent('home', 'acmeHostnames = ["RV.example.com"]'),
      ['agent[0].acmeHostnames[0] "RV.example.com" is the rendezvous\'s own name (tls); an agent must not get certificates for it, remove it here']],
    ['[tls]\nmode = "acme"\n[tls.acme]\nhostnames = ["rv.example.com"]\nchallenge = "http-01"\n' + agent('home'),
      ['rendezvous.acmeHttp is missing; tls.acme.challenge = "http-01" is answered there: add acmeHttp = "0.0.0.0:80" to [rendezvous] (the CA asks on port 80)']],
    [ACME_HTTP + '[tls]\nmode = "acme"\n[tls.acme]\nhostnames = ["rv.example.com"]\nchallenge = "http-01"\n' + agent('home', 'acmeHostnames = ["rv.example.com"]'),
      ['agent[0].acmeHostnames[0] "rv.example.com" is the rendezvous\'s own name (tls); an agent must not get certificates for it, remove it here']],
  ];
  for (const [text, problems] of cases) assert.deepEqual(problemsOf(text), problems, text);
});

test('the rendezvous\'s own http-01 with acmeHttp, and agents with names of their own, are accepted', () => {
  const text = `${ACME_HTTP}[tls]\nmode = "acme"\n[tls.acme]\nhostnames = ["rv.example.com"]\nchallenge = "http-01"\n${agent('home', 'acmeHostnames = ["home.example.com"]')}${agent('cabin', 'acmeHostnames = ["cabin.example.com"]')}`;
  const config = parseRendezvousConfig(text, FILE);
  assert.deepEqual(config.agents.map((entry) => entry.acmeHostnames), [['home.example.com'], ['cabin.example.com']]);
});
