import type { RouteConfig } from '../config/agent-types.js';

/** A configured route, ready to forward to; `label` ("host" + "path") names it in logs and error pages. */
export interface Route extends RouteConfig {
  readonly label: string;
}

export interface Router {
  /**
   * The route for a request, or undefined when none matches. `hostHeader` is the raw Host header;
   * `path` is the request path as returned by {@link routingPath}.
   */
  match(hostHeader: string | undefined, path: string): Route | undefined;
}

/** Routes of one host pattern, longest path prefix first. */
type PathTable = Route[];

/**
 * Builds the routing table once. Hosts are tried from the most specific to the least (exact name, then
 * "*.suffix" from the longest suffix to the shortest, then "*"); within a host the longest path prefix
 * wins. A host whose paths do not cover the request falls through to the next, less specific host, so
 * `nas.example.com /api` plus `* /` sends `nas.example.com/other` to the catch-all instead of a 404.
 * "*.example.com" matches names at any depth below example.com (like nginx), never example.com itself.
 * Of two routes with the same host and path, the first one configured wins.
 */
export function compileRoutes(routes: readonly RouteConfig[]): Router {
  const exact = new Map<string, PathTable>();
  const bySuffix = new Map<string, PathTable>(); // key: ".example.com"
  const catchAll: PathTable = [];
  for (const config of routes) {
    const route: Route = { ...config, label: config.host + config.path };
    tableFor(route.host, exact, bySuffix, catchAll).push(route);
  }
  for (const table of [...exact.values(), ...bySuffix.values(), catchAll]) {
    table.sort((a, b) => b.path.length - a.path.length); // stable: equal paths keep config order
  }
  const hasWildcards = bySuffix.size > 0;

  return {
    match(hostHeader, path) {
      const host = normaliseHost(hostHeader);
      const table = exact.get(host);
      const exactRoute = table && matchPath(table, path);
      if (exactRoute) return exactRoute;
      if (hasWildcards) {
        // ".b.example.com", then ".example.com", then ".com": longest suffix first; the first label
        // is never empty, so "*.example.com" cannot match "example.com" or ".example.com".
        for (let dot = host.indexOf('.', 1); dot !== -1; dot = host.indexOf('.', dot + 1)) {
          const suffixTable = bySuffix.get(host.slice(dot));
          const route = suffixTable && matchPath(suffixTable, path);
          if (route) return route;
        }
      }
      return matchPath(catchAll, path);
    },
  };
}

function tableFor(
  host: string,
  exact: Map<string, PathTable>,
  bySuffix: Map<string, PathTable>,
  catchAll: PathTable,
): PathTable {
  if (host === '*') return catchAll;
  const isWildcard = host.startsWith('*.');
  const map = isWildcard ? bySuffix : exact;
  const key = isWildcard ? normaliseHost(host.slice(1)) : normaliseHost(host);
  let table = map.get(key);
  if (!table) map.set(key, (table = []));
  return table;
}

/** The longest prefix in the table that ends on a segment boundary of `path`. */
function matchPath(table: PathTable, path: string): Route | undefined {
  for (const route of table) {
    if (isPathPrefix(route.path, path)) return route;
  }
  return undefined;
}

/** "/media" covers "/media" and "/media/x" but not "/mediafoo"; "/media/" and "/" cover what they start. */
export function isPathPrefix(prefix: string, path: string): boolean {
  if (!path.startsWith(prefix)) return false;
  return prefix.endsWith('/') || path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f;
}

/**
 * The host name of a Host header as routes name it: lower-case, no port, no trailing dot, IPv6 without
 * brackets ("[::1]:8443" -> "::1", "NAS.Example.com.:443" -> "nas.example.com"). Missing -> "".
 */
export function normaliseHost(hostHeader: string | undefined): string {
  if (hostHeader === undefined) return '';
  let host = hostHeader;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    const close = host.indexOf(']');
    host = close === -1 ? host.slice(1) : host.slice(1, close);
  } else {
    const colon = host.indexOf(':');
    // More than one colon without brackets is a bare IPv6 address, which has no port to strip.
    if (colon !== -1 && host.indexOf(':', colon + 1) === -1) host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  return host.toLowerCase();
}

/** Signs that a path is not in the canonical form the upstream will receive. */
const NON_CANONICAL_PATH = /\\|\/\.|%2e/i;

/**
 * The path to route and log a request by: the request target without its query string (tokens in
 * query strings must not reach the logs), in the canonical form the forwarder sends upstream. Dot
 * segments ("/media/../admin", also percent-encoded) and backslashes are resolved the way the WHATWG
 * URL parser resolves them for the upstream request, so routing sees the same path the service will.
 * An absolute-form target ("http://h/p") yields its path; an unparsable one is returned as is and
 * matches no route.
 */
export function routingPath(requestTarget: string): string {
  if (requestTarget.charCodeAt(0) === 0x2f /* / */ && !NON_CANONICAL_PATH.test(requestTarget)) {
    const query = requestTarget.indexOf('?');
    return query === -1 ? requestTarget : requestTarget.slice(0, query);
  }
  if (!URL.canParse(requestTarget, 'http://host.invalid')) return requestTarget;
  // An origin-form target starting with "//" would parse as a host; anchor it the way the forwarder does.
  const base = requestTarget.startsWith('//') ? `http://host.invalid${requestTarget}` : requestTarget;
  return new URL(base, 'http://host.invalid').pathname;
}
