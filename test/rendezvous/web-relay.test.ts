import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentMode } from '../../src/config/rendezvous-types.js';
import { AddressAllowList } from '../../src/rendezvous/addresses.js';
import type { AgentRecord } from '../../src/rendezvous/registry.js';
import { answerWebRequest, type RedirectDirectory, type WebResponse } from '../../src/rendezvous/web.js';

const CHECKED = '2030-01-01T04:00:07.000Z';
const DIRECT = 'https://198.51.100.2:20001';

function agent(fields: Partial<AgentRecord>): AgentRecord {
  return { name: 'home', online: true, publicAddress: { ip: '198.51.100.2', port: 20001 }, reachability: { state: 'reachable', checkedAt: CHECKED }, addressChanges: 0, ...fields };
}

const REACHABLE = agent({});
const UNREACHABLE = agent({ reachability: { state: 'unreachable', reason: 'timeout', checkedAt: CHECKED } });
const CHECKING = agent({ reachability: { state: 'unknown' } });
const OFFLINE = agent({ online: false, offlineSince: '2030-01-01T03:59:00.000Z' });
const NEVER = agent({ online: false, publicAddress: undefined, reachability: { state: 'unknown' } });

function directory(record: AgentRecord, relay: { mode: AgentMode; port?: number }, publicHost?: string): RedirectDirectory {
  return {
    lookup: (name) => (name === 'home' ? record : undefined),
    allow: new AddressAllowList([]),
    relayOf: (name) => {
      assert.equal(name, 'home');
      return relay;
    },
    ...(publicHost !== undefined ? { publicHost } : {}),
  };
}

function go(url: string, host: string | undefined, dir: RedirectDirectory): WebResponse {
  return answerWebRequest({ method: 'GET', url, clientIp: '192.0.2.50', ...(host !== undefined ? { host } : {}) }, dir);
}

const AUTO_RELAY = { mode: 'auto' as const, port: 9443 };

test('mode auto with a relay: unreachable and unchecked go to the relay port under the Host name, reachable goes direct', () => {
  const cases: [name: string, record: AgentRecord, url: string, location: string, why: RegExp][] = [
    ['unreachable', UNREACHABLE, '/go/home/movie.bin', 'https://rdv.example.com:9443/movie.bin', /^relay: .*unreachable: timeout \(checked at 2030-01-01T04:00:07\.000Z\)/],
    ['unreachable, rest and query', UNREACHABLE, '/go/home/a%2Fb/%E2%82%AC/x;y?q=%3F&b=%20x&&c', 'https://rdv.example.com:9443/a%2Fb/%E2%82%AC/x;y?q=%3F&b=%20x&&c', /^relay: /],
    ['unreachable, no rest', UNREACHABLE, '/go/home', 'https://rdv.example.com:9443/', /^relay: /],
    ['unreachable, query only', UNREACHABLE, '/go/home?x=1', 'https://rdv.example.com:9443/?x=1', /^relay: /],
    ['unreachable, empty query', UNREACHABLE, '/go/home/x?', 'https://rdv.example.com:9443/x?', /^relay: /],
    ['unreachable, latin1 byte', UNREACHABLE, '/go/home/\u00e9 a', 'https://rdv.example.com:9443/%E9%20a', /^relay: /],
    ['unchecked', CHECKING, '/go/home/x', 'https://rdv.example.com:9443/x', /^relay: the punched port is not checked yet$/],
    ['reachable', REACHABLE, '/go/home/a%2Fb?q=1', `${DIRECT}/a%2Fb?q=1`, /^direct: the punched port passed the reachability check at 2030-01-01T04:00:07\.000Z$/],
  ];
  for (const [name, record, url, location, why] of cases) {
    const answer = go(url, 'rdv.example.com', directory(record, AUTO_RELAY));
    assert.equal(answer.status, 302, name);
    assert.equal(answer.headers.location, location, name);
    assert.equal(answer.headers['cache-control'], 'no-store', name);
    assert.equal(answer.agent, 'home', name);
    assert.match(answer.why ?? '', why, name);
  }
});

test('mode relay sends users to the relay even when the punched port is reachable; mode direct never does', () => {
  for (const record of [REACHABLE, UNREACHABLE, CHECKING]) {
    const answer = go('/go/home/x?y', 'rdv.example.com', directory(record, { mode: 'relay', port: 9443 }));
    assert.equal(answer.status, 302, record.reachability.state);
    assert.equal(answer.headers.location, 'https://rdv.example.com:9443/x?y', record.reachability.state);
    assert.equal(answer.why, 'relay: mode = "relay"');
  }
  assert.equal(go('/go/home/x', 'rdv.example.com', directory(REACHABLE, { mode: 'direct', port: 9443 })).headers.location, `${DIRECT}/x`);
  const blocked = go('/go/home/x', 'rdv.example.com', directory(UNREACHABLE, { mode: 'direct', port: 9443 }));
  assert.equal(blocked.status, 503);
  assert.match(blocked.body, /home is unreachable: timeout/);
  assert.equal(blocked.headers.location, undefined);
});

test('the relay location\'s host: publicHost wins, else the Host header without its port', () => {
  const cases: [host: string | undefined, publicHost: string | undefined, origin: string][] = [
    ['rdv.example.com', undefined, 'https://rdv.example.com:9443'],
    ['rdv.example.com:8443', undefined, 'https://rdv.example.com:9443'],
    ['rdv.example.com:443', undefined, 'https://rdv.example.com:9443'],
    ['RDV.Example.COM:8443', undefined, 'https://RDV.Example.COM:9443'],
    ['203.0.113.9:8443', undefined, 'https://203.0.113.9:9443'],
    ['[2001:db8::1]:8443', undefined, 'https://[2001:db8::1]:9443'],
    ['[2001:db8::1]', undefined, 'https://[2001:db8::1]:9443'],
    ['localhost', undefined, 'https://localhost:9443'],
    ['rdv.example.com:8443', 'relay.example.net', 'https://relay.example.net:9443'],
    [undefined, 'relay.example.net', 'https://relay.example.net:9443'],
    ['evil.com/x', 'relay.example.net', 'https://relay.example.net:9443'],
    ['rdv.example.com', '2001:db8::5', 'https://[2001:db8::5]:9443'],
    ['rdv.example.com', '203.0.113.7', 'https://203.0.113.7:9443'],
  ];
  for (const [host, publicHost, origin] of cases) {
    const answer = go('/go/home/p?q', host, directory(UNREACHABLE, AUTO_RELAY, publicHost));
    assert.equal(answer.status, 302, `${host} / ${publicHost}`);
    assert.equal(answer.headers.location, `${origin}/p?q`, `${host} / ${publicHost}`);
  }
});

test('no Host header, or one that is no host name: no relay location, 503 saying so', () => {
  const hosts: (string | undefined)[] = [
    undefined, '', 'evil.com/x', 'a b', 'evil.com:8443/x', 'user@evil.com', 'evil.com:', 'evil.com:99999x', '[evil.com]:8443',
    '[2001:db8::1', '2001:db8::1]:8443', 'evil.com?x', 'evil.com#x', 'evil.com\\x', '-evil.com', 'a..b', ':8443',
  ];
  for (const host of hosts) {
    const answer = go('/go/home/x', host, directory(UNREACHABLE, AUTO_RELAY));
    assert.equal(answer.status, 503, JSON.stringify(host));
    assert.equal(answer.headers.location, undefined, JSON.stringify(host));
    assert.match(answer.body, /no host name/, JSON.stringify(host));
    assert.match(answer.body, /publicHost/, JSON.stringify(host));
  }
  // the same garbage Host does not matter when the user goes direct
  assert.equal(go('/go/home/x', 'evil.com/x', directory(REACHABLE, AUTO_RELAY)).headers.location, `${DIRECT}/x`);
});

test('a wildcard Host header is no host name to redirect to', () => {
  const answer = go('/go/home/x', '*.example.com', directory(UNREACHABLE, AUTO_RELAY));
  assert.equal(answer.status, 503, answer.headers.location);
});

test('offline and never-connected agents are 503 whatever the mode and relay', () => {
  for (const record of [OFFLINE, NEVER]) {
    for (const relay of [AUTO_RELAY, { mode: 'relay' as const, port: 9443 }, { mode: 'direct' as const }]) {
      const answer = go('/go/home/x', 'rdv.example.com', directory(record, relay));
      assert.equal(answer.status, 503, `${record.online}/${relay.mode}`);
      assert.equal(answer.headers.location, undefined);
      assert.match(answer.body, record === OFFLINE ? /home is offline since 2030-01-01T03:59:00\.000Z/ : /home has not connected/);
    }
  }
});
