import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { createHash } from 'node:crypto';
import { AddressAllowList } from '../../src/rendezvous/addresses.js';
import { ADMIN_PAGE_CSP } from '../../src/rendezvous/admin-page.js';
import type { AgentRecord } from '../../src/rendezvous/registry.js';
import { answerWebRequest, createWebServer, type RedirectDirectory, type WebResponse } from '../../src/rendezvous/web.js';
import { openCertificateSource } from '../../src/tls/certificates.js';

const FP = Array.from({ length: 32 }, () => 'AB').join(':');

function agent(name: string, fields: Partial<AgentRecord>): AgentRecord {
  return { name, online: true, reachability: { state: 'reachable', checkedAt: '2030-01-01T04:00:05.000Z' }, addressChanges: 0, fingerprint: FP, ...fields };
}

const RECORDS = new Map<string, AgentRecord>([
  ['home', agent('home', { publicAddress: { ip: '198.51.100.2', port: 20001 } })],
  ['dyn', agent('dyn', { publicAddress: { ip: '198.51.100.2', port: 20002 }, publicHost: 'home.example.com' })],
  ['six', agent('six', { publicAddress: { ip: '2001:db8::2', port: 443 } })],
  ['checking', agent('checking', { publicAddress: { ip: '198.51.100.4', port: 20004 }, reachability: { state: 'unknown' } })],
  ['away', agent('away', { online: false, offlineSince: '2030-01-01T03:59:00.000Z', publicAddress: { ip: '198.51.100.5', port: 20005 } })],
  ['never', agent('never', { online: false, reachability: { state: 'unknown' } })],
  ['blocked', agent('blocked', { publicAddress: { ip: '198.51.100.6', port: 20006 }, reachability: { state: 'unreachable', reason: 'timeout', checkedAt: '2030-01-01T04:00:07.000Z' } })],
]);

function directory(allow: string[] = []): RedirectDirectory {
  return { lookup: (name) => RECORDS.get(name), allow: new AddressAllowList(allow), relayOf: () => ({ mode: 'direct' }) };
}

function get(url: string, clientIp = '192.0.2.50', allow: string[] = [], method = 'GET'): WebResponse {
  return answerWebRequest({ method, url, clientIp }, directory(allow));
}

test('redirects keep rest and query byte for byte, prefer publicHost, bracket IPv6, never cache', () => {
  const cases: [url: string, location: string][] = [
    ['/go/home/movie.bin', 'https://198.51.100.2:20001/movie.bin'],
    ['/go/home/web/index.html?a=1&b=%20x', 'https://198.51.100.2:20001/web/index.html?a=1&b=%20x'],
    ['/go/home', 'https://198.51.100.2:20001/'],
    ['/go/home/', 'https://198.51.100.2:20001/'],
    ['/go/home?x=1', 'https://198.51.100.2:20001/?x=1'],
    ['/go/home/a%2Fb/%E2%82%AC?q=%3F', 'https://198.51.100.2:20001/a%2Fb/%E2%82%AC?q=%3F'],
    ['/go/dyn/movies/', 'https://home.example.com:20002/movies/'],
    ['/go/six/x', 'https://[2001:db8::2]:443/x'],
    ['/go/checking/x', 'https://198.51.100.4:20004/x'], // a check under way does not hold the redirect back
  ];
  for (const [url, location] of cases) {
    const answer = get(url);
    assert.equal(answer.status, 302, url);
    assert.equal(answer.headers.location, location, url);
    assert.equal(answer.headers['cache-control'], 'no-store', url);
  }
});

test('open-redirect attempts stay on the agent\'s host', () => {
  const attempts = [
    '/go/home//evil.example/', '/go/home/\\evil.example', '/go/home/\\\\evil.example', '/go/home/@evil.example',
    '/go/home/..//evil.example', '/go/home/https://evil.example/', '/go/home/%2F%2Fevil.example', '/go/home/x?//evil.example',
    '/go/home/\x7f\u00ff?\u00e9', '/go/home/a b', '/go/home/#@evil.example',
  ];
  for (const url of attempts) {
    const answer = get(url);
    assert.equal(answer.status, 302, url);
    const location = answer.headers.location!;
    assert.equal(new URL(location).host, '198.51.100.2:20001', `${url} → ${location}`);
    assert.match(location, /^https:\/\/198\.51\.100\.2:20001\/[\x21-\x5b\x5d-\x7e]*$/, `${url}: only printable ASCII, no backslash`);
  }
  assert.equal(get('/go/home/\\evil.example').headers.location, 'https://198.51.100.2:20001/%5Cevil.example');
  assert.equal(get('/go/home/a b').headers.location, 'https://198.51.100.2:20001/a%20b');
  assert.equal(get('/go/home/\u00e9').headers.location, 'https://198.51.100.2:20001/%E9', 'a latin1 request byte stays that byte');
});

test('unknown agents, odd names and other paths are 404; only GET and HEAD are served', () => {
  for (const url of ['/go/stranger/x', '/go/Home/x', '/go/ho%6De/', '/go/', '/go', '/go//home', '/goo/home', '/admin/', '/api/agents/home/status', 'http://evil.example/go/home/', '*']) {
    const answer = get(url);
    assert.equal(answer.status, 404, url);
    assert.equal(answer.headers.location, undefined, url);
  }
  assert.equal(get('/go/home/x', undefined, [], 'HEAD').status, 302);
  const post = get('/go/home/x', undefined, [], 'POST');
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, 'GET, HEAD');
  assert.deepEqual([get('/healthz').status, get('/healthz').body], [200, 'ok\n']);
  assert.equal(get('/healthz?probe=1').status, 200);
  assert.equal(get('/').status, 200);
});

test('offline and unreachable agents get 503 with the reason; the page does not give the address away', () => {
  const away = get('/go/away/x');
  assert.equal(away.status, 503);
  assert.match(away.body, /away is offline since 2030-01-01T03:59:00\.000Z/);
  const never = get('/go/never/');
  assert.equal(never.status, 503);
  assert.match(never.body, /never has not connected to the rendezvous yet/);
  const blocked = get('/go/blocked/');
  assert.equal(blocked.status, 503);
  assert.match(blocked.body, /blocked is unreachable: timeout \(checked at 2030-01-01T04:00:07\.000Z\)/);
  for (const answer of [away, never, blocked]) {
    assert.equal(answer.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(answer.headers['cache-control'], 'no-store');
    assert.doesNotMatch(answer.body, /198\.51\.100/);
  }
});

test('redirectAllow: other clients get the very 404 an unknown agent gets', () => {
  const allow = ['192.0.2.0/24', '2001:db8:1::/48'];
  assert.equal(get('/go/home/x', '192.0.2.50', allow).status, 302);
  assert.equal(get('/go/home/x', '2001:db8:1::9', allow).status, 302);
  const outsider = get('/go/home/x', '203.0.113.7', allow);
  const unknown = get('/go/stranger/x', '192.0.2.50', allow);
  assert.equal(outsider.status, 404);
  assert.deepEqual([outsider.headers, outsider.body], [unknown.headers, unknown.body]);
  assert.equal(get('/go/away/x', '203.0.113.7', allow).status, 404, 'not even "offline" is told');
  assert.equal(get('/healthz', '203.0.113.7', allow).status, 200);
});

test('/admin is the phone page under a strict CSP that admits exactly its own inline script and style', () => {
  const answer = get('/admin');
  assert.equal(answer.status, 200);
  assert.equal(answer.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(answer.headers['cache-control'], 'no-store');
  assert.equal(answer.headers['x-content-type-options'], 'nosniff');
  assert.equal(answer.headers['x-frame-options'], 'DENY');
  const csp = answer.headers['content-security-policy']!;
  assert.equal(csp, ADMIN_PAGE_CSP);
  const directives = new Map(csp.split(/;\s*/).map((directive) => {
    const [name = '', ...values] = directive.split(' ');
    return [name, values];
  }));
  assert.deepEqual(directives.get('default-src'), ["'none'"]);
  assert.deepEqual(directives.get('frame-ancestors'), ["'none'"]);
  assert.deepEqual(directives.get('connect-src'), ["'self'"]);
  const scripts = [...answer.body.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((match) => match[1]!);
  const styles = [...answer.body.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((match) => match[1]!);
  assert.equal(scripts.length, 1);
  const hashOf = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
  assert.deepEqual(directives.get('script-src'), scripts.map(hashOf), 'the inline script runs, nothing else does');
  assert.deepEqual(directives.get('style-src'), styles.map(hashOf));
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  assert.doesNotMatch(answer.body, /\son[a-z]+=/i, 'no inline event handlers (the CSP would block them)');
  assert.equal(get('/admin', undefined, [], 'POST').status, 405);
  assert.equal(get('/admin', '203.0.113.7', ['192.0.2.0/24']).status, 200, 'served to every address: a phone away from home needs it');
});

const scratch: string[] = [];
after(() => Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true }))));

test('over HTTPS: 302 with Location and no-store, HEAD without body, client address from the socket', { timeout: 20_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hp-web-'));
  scratch.push(dir);
  const logger = pino({ level: 'silent' });
  const certificates = await openCertificateSource({ mode: 'selfsigned', certDir: join(dir, 'certs'), hostnames: ['localhost', '127.0.0.1'] }, logger);
  const server = createWebServer({ certificates, directory: directory(['127.0.0.0/8']), logger });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const fetch = (path: string, method = 'GET') => new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, rejectUnauthorized: false, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
  try {
    const redirect = await fetch('/go/home/movie.bin?t=42');
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.location, 'https://198.51.100.2:20001/movie.bin?t=42');
    assert.equal(redirect.headers['cache-control'], 'no-store');
    const head = await fetch('/go/blocked/', 'HEAD');
    assert.deepEqual([head.status, head.body], [503, '']);
    assert.deepEqual([(await fetch('/healthz')).status, (await fetch('/healthz')).body], [200, 'ok\n']);
    assert.equal((await fetch('/nothing')).status, 404);
    const api = await fetch('/api/agents/home/status');
    assert.equal(api.status, 404, 'no admin API without a key store');
    assert.equal(api.headers['content-type'], 'application/json; charset=utf-8');
    assert.match(JSON.parse(api.body).error, /\/api\/agents\/<name>\/status/);
  } finally {
    server.closeAllConnections();
    server.close();
    certificates.close();
  }
});
