import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../src/common/config-error.js';
import { parseRendezvousConfig } from '../../src/config/rendezvous.js';

const FILE = '/etc/homeport/rendezvous.toml';
const SECRET = 'correct-horse-battery-staple';
const HEAD = `[tls]\nmode = "selfsigned"\n`;

function agentBlock(name: string, keys: string): string {
  return `[[agent]]\nname = "${name}"\nsecret = "${SECRET}"\n${keys}\n`;
}

function agentsOf(text: string) {
  return parseRendezvousConfig(`${HEAD}${text}`, FILE, {}).agents;
}

function problemsOf(text: string): string[] {
  try {
    parseRendezvousConfig(`${HEAD}${text}`, FILE, {});
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail(`the config was accepted:\n${text}`);
}

const RELAY_DEFAULTS = { maxConnections: 64, bytesPerSecond: 0, idleMs: 30 * 60_000, pool: 2 };

test('relay and its keys are read; mode defaults to auto with a relay and direct without', () => {
  const cases: [keys: string, expected: object][] = [
    ['', { mode: 'direct' }],
    ['mode = "direct"', { mode: 'direct' }],
    ['relay = "127.0.0.1:9443"', { mode: 'auto', relay: { listen: { host: '127.0.0.1', port: 9443 }, ...RELAY_DEFAULTS } }],
    ['relay = "[::]:9443"\nmode = "relay"', { mode: 'relay', relay: { listen: { host: '::', port: 9443 }, ...RELAY_DEFAULTS } }],
    ['relay = "0.0.0.0:9443"\nmode = "direct"', { mode: 'direct', relay: { listen: { host: '0.0.0.0', port: 9443 }, ...RELAY_DEFAULTS } }],
    [
      'relay = "127.0.0.1:9443"\nrelayMaxConnections = 1\nrelayRate = "100Mbit/s"\nrelayIdle = "5m"\nrelayPool = 16',
      { mode: 'auto', relay: { listen: { host: '127.0.0.1', port: 9443 }, maxConnections: 1, bytesPerSecond: 12_500_000, idleMs: 300_000, pool: 16 } },
    ],
    [
      'relay = "127.0.0.1:9443"\nrelayMaxConnections = 100000\nrelayRate = "20MB/s"\nrelayIdle = "30s"\nrelayPool = 0',
      { mode: 'auto', relay: { listen: { host: '127.0.0.1', port: 9443 }, maxConnections: 100_000, bytesPerSecond: 20_000_000, idleMs: 30_000, pool: 0 } },
    ],
    ['relay = "127.0.0.1:9443"\nrelayRate = "0"', { mode: 'auto', relay: { listen: { host: '127.0.0.1', port: 9443 }, ...RELAY_DEFAULTS } }],
  ];
  for (const [keys, expected] of cases) {
    assert.deepEqual(agentsOf(agentBlock('home', keys)), [{ name: 'home', secret: SECRET, ...expected }], keys);
  }
});

test('each agent has its own relay settings', () => {
  const agents = agentsOf(agentBlock('home', 'relay = "0.0.0.0:9443"\nrelayPool = 4') + agentBlock('cabin', '') + agentBlock('flat', 'relay = "0.0.0.0:9444"\nmode = "relay"'));
  assert.deepEqual(
    agents.map((a) => [a.name, a.mode, a.relay?.listen.port, a.relay?.pool]),
    [['home', 'auto', 9443, 4], ['cabin', 'direct', undefined, undefined], ['flat', 'relay', 9444, 2]],
  );
});

test('[rendezvous] publicHost is read; absent by default; a non-name is refused', () => {
  const agent = agentBlock('home', 'relay = "0.0.0.0:9443"');
  for (const host of ['rdv.example.com', '203.0.113.7', '2001:db8::1', 'localhost']) {
    assert.equal(parseRendezvousConfig(`${HEAD}[rendezvous]\npublicHost = "${host}"\n${agent}`, FILE).rendezvous.publicHost, host);
  }
  assert.equal('publicHost' in parseRendezvousConfig(`${HEAD}${agent}`, FILE).rendezvous, false);
  for (const host of ['rdv.example.com:8443', 'https://rdv.example.com', 'a b', 'evil.com/x', '[2001:db8::1]']) {
    const problems = problemsOf(`[rendezvous]\npublicHost = "${host}"\n${agent}`);
    assert.deepEqual(problems, [`${FILE}: rendezvous.publicHost "${host}" is not a host name; write the name users reach the rendezvous at, e.g. "rdv.example.com"`], host);
  }
});

test('each mistake is one line naming the file, the key path and the fix', () => {
  const cases: [keys: string, key: string, fix: RegExp][] = [
    ['mode = "relay"', 'agent[0].mode', /needs a relay port; add relay = "0\.0\.0\.0:9443"/],
    ['relay = "127.0.0.1:9443"\nmode = "fast"', 'agent[0].mode', /"fast" is not one of "auto", "direct", "relay"/],
    ['relay = "127.0.0.1:9443"\nrelayRate = "20MB"', 'agent[0].relayRate', /"20MB" is not a rate; write e\.g\. "20MB\/s"/],
    ['relay = "127.0.0.1:9443"\nrelayRate = "512B/s"', 'agent[0].relayRate', /below 1kB\/s.*e\.g\. "1MB\/s"/],
    ['relay = "127.0.0.1:9443"\nrelayRate = 20', 'agent[0].relayRate', /must be a non-empty string/],
    ['relay = "127.0.0.1:9443"\nrelayPool = 17', 'agent[0].relayPool', /whole number from 0 to 16; the default is 2/],
    ['relay = "127.0.0.1:9443"\nrelayPool = -1', 'agent[0].relayPool', /whole number from 0 to 16/],
    ['relay = "127.0.0.1:9443"\nrelayPool = "2"', 'agent[0].relayPool', /whole number from 0 to 16/],
    ['relay = "127.0.0.1:9443"\nrelayMaxConnections = 0', 'agent[0].relayMaxConnections', /whole number from 1 to 100000; the default is 64/],
    ['relay = "127.0.0.1:9443"\nrelayMaxConnections = 1.5', 'agent[0].relayMaxConnections', /whole number from 1 to 100000/],
    ['relay = "127.0.0.1:9443"\nrelayMaxConnections = 100001', 'agent[0].relayMaxConnections', /whole number from 1 to 100000/],
    ['relay = "127.0.0.1:9443"\nrelayIdle = "0"', 'agent[0].relayIdle', /must be longer than 0/],
    ['relay = "127.0.0.1:9443"\nrelayIdle = 30', 'agent[0].relayIdle', /duration in quotes such as "30s"/],
    ['relay = "rdv.example.com:9443"', 'agent[0].relay', /is not an IP address; write "0\.0\.0\.0:25305"/],
    ['relay = "9443"', 'agent[0].relay', /is not host:port/],
    ['relay = "127.0.0.1:70000"', 'agent[0].relay', /outside/],
    ['relayPool = 4', 'agent[0].relayPool', /needs relay = "0\.0\.0\.0:9443" in the same \[\[agent\]\]/],
    ['relayRate = "20MB/s"', 'agent[0].relayRate', /needs relay = "0\.0\.0\.0:9443"/],
    ['relayIdle = "5m"', 'agent[0].relayIdle', /needs relay = "0\.0\.0\.0:9443"/],
    ['relayMaxConnections = 8', 'agent[0].relayMaxConnections', /needs relay = "0\.0\.0\.0:9443"/],
    ['relayPorts = 4', 'agent[0].relayPorts', /is not a known key; known keys here: .*relayPool/],
  ];
  for (const [keys, key, fix] of cases) {
    const problems = problemsOf(agentBlock('home', keys));
    assert.equal(problems.length, 1, `${keys}: ${problems.join(' | ')}`);
    const [problem] = problems as [string];
    assert.ok(problem.startsWith(`${FILE}: ${key} `), `${keys}: ${problem}`);
    assert.match(problem, fix, keys);
    assert.doesNotMatch(problem, /\n/, keys);
  }
  // the key path names the agent the mistake is in
  const second = problemsOf(agentBlock('home', 'relay = "0.0.0.0:9443"') + agentBlock('cabin', 'relay = "0.0.0.0:9444"\nrelayPool = 17'));
  assert.deepEqual(second.map((p) => p.split(' ')[1]), ['agent[1].relayPool']);
});

test('several relay mistakes in one agent are all listed', () => {
  const problems = problemsOf(agentBlock('home', 'relay = "127.0.0.1:9443"\nrelayPool = 17\nrelayRate = "fast"\nrelayMaxConnections = 0\nrelayIdle = "0"'));
  assert.deepEqual(problems.map((p) => p.split(' ')[1]).sort(), ['agent[0].relayIdle', 'agent[0].relayMaxConnections', 'agent[0].relayPool', 'agent[0].relayRate']);
});

test('every relay key without relay is named', () => {
  const problems = problemsOf(agentBlock('home', 'relayPool = 4\nrelayRate = "1MB/s"'));
  assert.deepEqual(problems.map((p) => p.split(' ')[1]).sort(), ['agent[0].relayPool', 'agent[0].relayRate']);
});

test('a relay port that clashes with another listener is refused at load time', () => {
  for (const text of [
    `[rendezvous]\nhttp = "0.0.0.0:8443"\n${agentBlock('home', 'relay = "0.0.0.0:8443"')}`,
    `[rendezvous]\ncontrol = "0.0.0.0:7000"\n${agentBlock('home', 'relay = "0.0.0.0:7000"')}`,
    agentBlock('home', 'relay = "0.0.0.0:9443"') + agentBlock('cabin', 'relay = "0.0.0.0:9443"'),
  ]) {
    const problems = problemsOf(text);
    assert.match(problems.join('\n'), /relay/);
  }
});

test('a wildcard publicHost is refused: users cannot be sent to "*.example.com"', () => {
  const problems = problemsOf(`[rendezvous]\npublicHost = "*.example.com"\n${agentBlock('home', 'relay = "0.0.0.0:9443"')}`);
  assert.match(problems.join('\n'), /rendezvous\.publicHost/);
});
