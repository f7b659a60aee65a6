import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RouteConfig } from '../../src/config/agent-types.js';
import { compileRoutes, isPathPrefix, normaliseHost, routingPath } from '../../src/agent/router.js';

function route(host: string, path: string, port = 8000): RouteConfig {
  return { host, path, target: new URL(`http://127.0.0.1:${port}`), insecure: false };
}

const ROUTES: RouteConfig[] = [
  route('*', '/'),
  route('*', '/media'),
  route('nas.example.com', '/'),
  route('nas.example.com', '/media/'),
  route('api.example.com', '/v1'),
  route('*.example.com', '/'),
  route('*.example.com', '/admin'),
  route('*.dev.example.com', '/'),
  route('::1', '/ipv6'),
  route('192.168.1.5', '/'),
];

test('match: host specificity first, then the longest path prefix on a segment boundary', () => {
  const router = compileRoutes(ROUTES);
  const cases: Array<[host: string | undefined, path: string, expected: string | undefined]> = [
    // exact host
    ['nas.example.com', '/', 'nas.example.com/'],
    ['nas.example.com', '/media/film.mkv', 'nas.example.com/media/'],
    ['nas.example.com', '/media', 'nas.example.com/'], // "/media/" does not cover "/media"
    ['nas.example.com', '/admin', 'nas.example.com/'], // exact beats the wildcard's longer path
    // normalised Host header
    ['NAS.Example.COM', '/', 'nas.example.com/'],
    ['nas.example.com:8443', '/', 'nas.example.com/'],
    ['nas.example.com.', '/', 'nas.example.com/'],
    ['nas.example.com.:443', '/media/x', 'nas.example.com/media/'],
    ['[::1]:8443', '/ipv6/x', '::1/ipv6'],
    ['[::1]', '/ipv6', '::1/ipv6'],
    ['::1', '/ipv6', '::1/ipv6'], // bare IPv6 has no port to strip
    ['192.168.1.5:25305', '/x', '192.168.1.5/'],
    // an exact host without a covering path falls through to wildcards, then to "*"
    ['api.example.com', '/v1/items', 'api.example.com/v1'],
    ['api.example.com', '/v1', 'api.example.com/v1'],
    ['api.example.com', '/v10', '*.example.com/'],
    ['api.example.com', '/admin/x', '*.example.com/admin'],
    // wildcard suffixes: any depth, longest suffix first, never the bare suffix
    ['jellyfin.example.com', '/', '*.example.com/'],
    ['a.b.example.com', '/admin', '*.example.com/admin'],
    ['x.dev.example.com', '/admin', '*.dev.example.com/'],
    ['dev.example.com', '/', '*.example.com/'],
    ['example.com', '/', '*/'],
    ['.example.com', '/', '*/'],
    ['notexample.com', '/', '*/'],
    // catch-all and path boundaries
    ['other.org', '/media', '*/media'],
    ['other.org', '/media/', '*/media'],
    ['other.org', '/media/a/b', '*/media'],
    ['other.org', '/mediafoo', '*/'],
    [undefined, '/media', '*/media'],
    ['', '/', '*/'],
  ];
  for (const [host, path, expected] of cases) {
    assert.equal(router.match(host, path)?.label, expected, `${host} ${path}`);
  }
});

test('match: no route without a catch-all; the first of two identical routes wins', () => {
  const router = compileRoutes([route('nas.example.com', '/media', 1), route('nas.example.com', '/media', 2)]);
  assert.equal(router.match('nas.example.com', '/media/x')?.target.port, '1');
  assert.equal(router.match('nas.example.com', '/'), undefined);
  assert.equal(router.match('other.example.com', '/media'), undefined);
  assert.equal(compileRoutes([]).match('nas.example.com', '/'), undefined);
});

test('a request target that is not a path matches no route, not even "/"', () => {
  const router = compileRoutes([route('*', '/')]);
  assert.equal(router.match('h', routingPath('http://[bad')), undefined);
});

test('isPathPrefix: segment boundaries', () => {
  const cases: Array<[prefix: string, path: string, expected: boolean]> = [
    ['/', '/', true],
    ['/', '/anything/at/all', true],
    ['/media', '/media', true],
    ['/media', '/media/', true],
    ['/media', '/media/x', true],
    ['/media', '/mediafoo', false],
    ['/media', '/medi', false],
    ['/media', '/Media', false],
    ['/media/', '/media', false],
    ['/media/', '/media/x', true],
  ];
  for (const [prefix, path, expected] of cases) assert.equal(isPathPrefix(prefix, path), expected, `${prefix} ${path}`);
});

test('normaliseHost: lower-case, no port, no trailing dot, no IPv6 brackets', () => {
  const cases: Array<[input: string | undefined, expected: string]> = [
    ['Example.COM', 'example.com'],
    ['example.com:443', 'example.com'],
    ['example.com.', 'example.com'],
    ['[2001:DB8::1]:443', '2001:db8::1'],
    ['[::1]', '::1'],
    ['2001:db8::1', '2001:db8::1'],
    ['10.0.0.1:80', '10.0.0.1'],
    [undefined, ''],
  ];
  for (const [input, expected] of cases) assert.equal(normaliseHost(input), expected, String(input));
});

test('routingPath: no query string; dot segments resolved as the upstream will see them', () => {
  const cases: Array<[target: string, expected: string]> = [
    ['/', '/'],
    ['/media/film.mkv', '/media/film.mkv'],
    ['/media/film.mkv?api_key=secret', '/media/film.mkv'],
    ['/a%20b/c', '/a%20b/c'],
    ['/media/../admin', '/admin'],
    ['/media/%2e%2E/admin?x=1', '/admin'],
    ['/media/./x', '/media/x'],
    ['/media\\..\\admin', '/admin'],
    ['/media/.hidden', '/media/.hidden'],
    ['//double/../x', '//x'],
    ['http://other.example/p?q', '/p'],
    ['*', '/*'], // "OPTIONS *": the forwarder sends it upstream as "/*" too
  ];
  for (const [target, expected] of cases) assert.equal(routingPath(target), expected, target);
});
