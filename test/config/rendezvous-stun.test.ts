import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../src/common/config-error.js';
import { parseRendezvousConfig } from '../../src/config/rendezvous.js';

const FILE = '/etc/homeport/rendezvous.toml';
const AGENT = '[[agent]]\nname = "home"\nsecret = "correct-horse-battery-staple"\n';

function stunOf(stunTable: string) {
  return parseRendezvousConfig(`${stunTable}\n${AGENT}`, FILE).stun;
}

function problemsOf(text: string): string[] {
  try {
    parseRendezvousConfig(`${text}\n${AGENT}`, FILE);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected ConfigError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail(`the config was accepted:\n${text}`);
}

test('[stun] listens on 0.0.0.0:3478 by default; "off" turns it off; alternate defaults to listen port + 1', () => {
  const cases: [table: string, expected: object | undefined][] = [
    ['', { listen: { host: '0.0.0.0', port: 3478 } }],
    ['[stun]', { listen: { host: '0.0.0.0', port: 3478 } }],
    ['[stun]\nlisten = "off"', undefined],
    ['[stun]\nlisten = "127.0.0.1:0"', { listen: { host: '127.0.0.1', port: 0 } }],
    ['[stun]\nlisten = "[::]:3478"', { listen: { host: '::', port: 3478 } }],
    ['[stun]\nlisten = "203.0.113.10:3478"\nalternate = "203.0.113.11"', { listen: { host: '203.0.113.10', port: 3478 }, alternate: { host: '203.0.113.11', port: 3479 } }],
    ['[stun]\nlisten = "203.0.113.10:3478"\nalternate = "203.0.113.11:3490"', { listen: { host: '203.0.113.10', port: 3478 }, alternate: { host: '203.0.113.11', port: 3490 } }],
    ['[stun]\nlisten = "[2001:db8::1]:3478"\nalternate = "2001:db8::2"', { listen: { host: '2001:db8::1', port: 3478 }, alternate: { host: '2001:db8::2', port: 3479 } }],
    ['[stun]\nlisten = "[2001:db8::1]:3478"\nalternate = "[2001:db8::2]:4000"', { listen: { host: '2001:db8::1', port: 3478 }, alternate: { host: '2001:db8::2', port: 4000 } }],
    // the alternate port may be below listen's: only equal is wrong
    ['[stun]\nlisten = "203.0.113.10:3478"\nalternate = "203.0.113.11:3477"', { listen: { host: '203.0.113.10', port: 3478 }, alternate: { host: '203.0.113.11', port: 3477 } }],
  ];
  for (const [table, expected] of cases) assert.deepEqual(stunOf(table), expected, table);
  assert.equal('stun' in parseRendezvousConfig(`[stun]\nlisten = "off"\n${AGENT}`, FILE), false, 'no stun key when it is off');
});

test('each [stun] mistake is one line naming the key and the fix', () => {
  const listen = '[stun]\nlisten = "203.0.113.10:3478"\n';
  const cases: [table: string, problems: string[]][] = [
    ['[stun]\nlisten = "3478"', ['stun.listen "3478" is not host:port; write "0.0.0.0:25305", "127.0.0.1:25305" or "[::]:25305"; or "off" to turn STUN off']],
    ['[stun]\nlisten = "example.com:3478"', ['stun.listen "example.com:3478": "example.com" is not an IP address; write "0.0.0.0:25305", "127.0.0.1:25305" or "[::]:25305"; or "off" to turn STUN off']],
    ['[stun]\nlisten = 3478', ['stun.listen must be a non-empty string (in quotes), not 3478']],
    ['[stun]\nport = 3478', ['stun.port is not a known key; known keys here: listen, alternate']],
    ['[stun]\nlisten = "off"\nalternate = "203.0.113.11"', ['stun.alternate needs STUN on; remove it, or set stun.listen to this server\'s first address, e.g. "203.0.113.10:3478"']],
    ['[stun]\nalternate = "203.0.113.11"', ['stun.listen "0.0.0.0" is every address, but stun.alternate needs this server\'s first address itself; write it, e.g. "203.0.113.10:3478"']],
    ['[stun]\nlisten = "[::]:3478"\nalternate = "2001:db8::2"', ['stun.listen "::" is every address, but stun.alternate needs this server\'s first address itself; write it, e.g. "203.0.113.10:3478"']],
    ['[stun]\nlisten = "127.0.0.1:0"\nalternate = "127.0.0.2:3479"', ['stun.listen port 0 cannot go with stun.alternate: the other ports are derived from it; write a port such as 3478']],
    [`${listen}alternate = "0.0.0.0"`, ['stun.alternate "0.0.0.0" is every address; write this server\'s second address, e.g. "203.0.113.11"']],
    [`${listen}alternate = "2001:db8::2"`, ['stun.alternate "2001:db8::2" is IPv6 but stun.listen is IPv4; write a second address of the same family']],
    [`${listen}alternate = "203.0.113.10"`, ['stun.alternate "203.0.113.10" is stun.listen\'s address too; write this server\'s second address']],
    [`${listen}alternate = "203.0.113.11:3478"`, ['stun.alternate port 3478 is stun.listen\'s port too; write another one, or leave it out for listen\'s port + 1']],
    [`${listen}alternate = "rdv2.example.com"`, ['stun.alternate "rdv2.example.com" is neither an IP address nor ip:port; write this server\'s second address, e.g. "203.0.113.11" or "203.0.113.11:3479"']],
    [`${listen}alternate = "203.0.113.11:0"`, ['stun.alternate "203.0.113.11:0" is neither an IP address nor ip:port; write this server\'s second address, e.g. "203.0.113.11" or "203.0.113.11:3479"']],
    ['[stun]\nlisten = "203.0.113.10:65535"\nalternate = "203.0.113.11"', ['stun.alternate "203.0.113.11" has no port and listen\'s port + 1 is past 65535; write "ip:port"']],
    ['[rendezvous]\ncontrol = "0.0.0.0:3478"\n[stun]\nlisten = "127.0.0.1:3478"', ['stun.listen uses the same port as rendezvous.control; give each listener its own port']],
    ['[rendezvous]\nhttp = "0.0.0.0:3479"\n[stun]\nlisten = "203.0.113.10:3478"\nalternate = "203.0.113.11"', ['stun.alternate uses the same port as rendezvous.http; give each listener its own port']],
    ['stun = "on"', ['stun must be a table ([stun]), not "on"']],
  ];
  for (const [table, problems] of cases) assert.deepEqual(problemsOf(table), problems.map((problem) => `${FILE}: ${problem}`), table);
});

test('a relay port that is the STUN port is refused; with STUN off the port is free', () => {
  const relay = '[[agent]]\nname = "cabin"\nsecret = "correct-horse-battery-staple"\nrelay = "0.0.0.0:3478"\n';
  assert.deepEqual(problemsOf(relay), [`${FILE}: agent[0].relay uses the same port as stun.listen; give each listener its own port`]);
  assert.equal(parseRendezvousConfig(`[stun]\nlisten = "off"\n${relay}${AGENT}`, FILE).agents[0]!.relay!.listen.port, 3478);
});
