import type { Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pathOf, sendJson, serveAdminHttp } from '../admin/http.js';
import { createHttpsServer } from '../tls/https-server.js';
import type { Logger } from '../common/logger.js';
import { AGENT_NAME_PATTERN } from '../protocol/messages.js';
import type { CertificateSource } from '../tls/certificates.js';
import { urlHost } from '../common/address.js';
import { isHostnameOrIp } from '../config/address.js';
import { escapeHtml } from '../common/html.js';
import { normalizeIp, type AddressAllowList } from './addresses.js';
import { ADMIN_PAGE_CSP, ADMIN_PAGE_HTML } from './admin-page.js';
import { choosePath, type RelayRoute } from './path.js';
import type { AgentRecord } from './registry.js';
import type { RemoteAdmin } from './remote-admin.js';

export interface WebRequest {
  method: string;
  /** The raw request target as received ("/go/home/a%20b?x=1"). */
  url: string;
  /** Normalised client IP. */
  clientIp: string;
  /** The Host header: the name the user reached the rendezvous at, which the relay ports share. */
  host?: string;
}

export interface WebResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** For the log line: which agent, and why the answer is what it is. */
  agent?: string;
  why?: string;
}

export interface RedirectDirectory {
  /** The record of a configured agent, undefined for any other name. */
  lookup(name: string): Readonly<AgentRecord> | undefined;
  /** `redirectAllow`: clients outside it are told nothing, not even which agents exist. */
  allow: AddressAllowList;
  /** A configured agent's mode, and its relay port when it has a relay. */
  relayOf(name: string): RelayRoute;
  /** `[rendezvous] publicHost`: the relay ports' host name; default the request's Host. */
  publicHost?: string;
}

const GO_PATH = /^\/go\/([^/]*)(?:\/(.*))?$/s;
/** `/api/agents/<name>/<route>`: the admin API for one agent. */
const API_PATH = /^\/api\/agents\/([^/]+)\/(.+)$/s;

/**
 * Pure: what the rendezvous answers a user. `/go/<agent>/<rest>?<query>` redirects to the agent's
 * public address with rest and query kept byte for byte; only configured agents that are online are
 * targets, and the Location's scheme, host and port come from the registry alone.
 */
export function answerWebRequest(request: WebRequest, directory: RedirectDirectory): WebResponse {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    return { ...page(405, 'Method not allowed', 'Only GET and HEAD are served here.'), headers: { ...HTML_HEADERS, allow: 'GET, HEAD' } };
  }
  const queryAt = request.url.indexOf('?');
  const path = pathOf(request.url);
  if (path === '/admin') return ADMIN_PAGE;
  if (path === '/healthz') return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }, body: 'ok\n' };
  if (path === '/') return page(200, 'homeport rendezvous', 'Links to a home look like <code>/go/&lt;name&gt;/</code>.');
  const match = GO_PATH.exec(path);
  if (!match) return NOT_FOUND;
  const name = match[1]!;
  const record = AGENT_NAME_PATTERN.test(name) && directory.allow.allows(request.clientIp) ? directory.lookup(name) : undefined;
  // Same answer for "no such agent" and "not for you": a scanner learns nothing from it.
  if (!record) return { ...NOT_FOUND, agent: name, why: directory.allow.allows(request.clientIp) ? 'unknown agent' : 'client not in redirectAllow' };
  const relay = directory.relayOf(name);
  const { path: way, reason } = choosePath(record, relay);
  if (way === 'none') return unavailable(name, `${reason}.`);
  const origin = way === 'direct' ? directOrigin(record) : relayOrigin(directory.publicHost ?? hostOf(request.host), relay.port!);
  if (origin === undefined) return unavailable(name, 'the relay has no host name to send you to: the request\'s Host header names none; the owner can set [rendezvous] publicHost.');
  const location = redirectLocation(origin, match[2] ?? '', queryAt < 0 ? undefined : request.url.slice(queryAt + 1));
  if (location === undefined) return { ...NOT_FOUND, agent: name, why: 'location would leave the agent' };
  return { status: 302, headers: { location, 'cache-control': 'no-store', 'content-length': '0' }, body: '', agent: name, why: `${way}: ${reason}` };
}

function unavailable(name: string, reason: string): WebResponse {
  return { ...page(503, `${name} is not available`, escapeHtml(reason)), agent: name, why: reason };
}

/** The agent's punched port: its DNS name (publicHost) or the public ip. */
function directOrigin(record: Readonly<AgentRecord>): string {
  const address = record.publicAddress!;
  return `https://${urlHost(record.publicHost ?? address.ip)}:${address.port}`;
}

/** The agent's relay port on this rendezvous, under the name the user reached it by. */
function relayOrigin(host: string | undefined, port: number): string | undefined {
  return host === undefined ? undefined : `https://${urlHost(host)}:${port}`;
}

/** The host name of a Host header ("rdv.example.com:8443", "[2001:db8::1]:8443"), if it is one. */
function hostOf(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/.exec(header);
  const host = match ? (match[1] ?? match[2])! : undefined;
  return host !== undefined && !host.includes('*') && isHostnameOrIp(host) ? host : undefined;
}

/**
 * <origin>/<rest>?<query>. Rest and query keep their percent-encoding; anything outside printable ASCII,
 * and the backslash some clients read as "/", is percent-encoded, so the header is valid and means the
 * same to every client. The result is checked to stay on the origin's host.
 */
export function redirectLocation(origin: string, rest: string, query: string | undefined): string | undefined {
  const location = `${origin}/${encodeUnsafe(rest)}${query === undefined ? '' : `?${encodeUnsafe(query)}`}`;
  return URL.canParse(location) && new URL(location).host === new URL(origin).host ? location : undefined;
}

function encodeUnsafe(text: string): string {
  // Node hands the request target over as latin1: each char below 256 is one byte of the original.
  return text.replace(/[^\x21-\x5b\x5d-\x7e]/g, (char) => {
    const code = char.charCodeAt(0);
    return code < 256 ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : encodeURIComponent(char);
  });
}

const HTML_HEADERS = { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };

function page(status: number, title: string, htmlText: string): WebResponse {
  const body = `<!doctype html>\n<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>\n<body><h1>${escapeHtml(title)}</h1><p>${htmlText}</p></body></html>\n`;
  return { status, headers: HTML_HEADERS, body };
}

const NOT_FOUND = page(404, 'Not found', 'There is nothing here.');

/**
 * The phone page. Its CSP allows only the page's own inline style and script (by hash) and fetches to this
 * origin; it may not be framed (clickjacking the "Allow" button) and is never cached (it is the key's
 * way in, and a cached old copy could outlive a fix).
 */
const ADMIN_PAGE: WebResponse = {
  status: 200,
  headers: {
    ...HTML_HEADERS,
    'content-security-policy': ADMIN_PAGE_CSP,
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
  },
  body: ADMIN_PAGE_HTML,
};

export interface WebServerOptions {
  certificates: CertificateSource;
  directory: RedirectDirectory;
  /** The admin API at /api/agents/<name>/...; without it /api/ is 404. */
  admin?: RemoteAdmin;
  logger: Logger;
}

/** The HTTPS server users reach: the admin API, and answerWebRequest for the rest. Call listen() on it. */
export function createWebServer({ certificates, directory, admin, logger }: WebServerOptions): Server {
  const log = logger.child({ component: 'web' });
  return createHttpsServer(certificates, log, (req: IncomingMessage, res: ServerResponse) => {
    const clientIp = normalizeIp(req.socket.remoteAddress ?? '') ?? 'unknown';
    const url = req.url ?? '/';
    if (url.startsWith('/api/')) return serveApi(req, res, clientIp, admin);
    const answer = answerWebRequest({ method: req.method ?? 'GET', url, clientIp, ...(req.headers.host ? { host: req.headers.host } : {}) }, directory);
    if (answer.agent !== undefined) {
      log[answer.status === 404 ? 'debug' : 'info']({ agent: answer.agent, client: clientIp, status: answer.status, why: answer.why }, 'redirect request');
    }
    res.writeHead(answer.status, answer.headers);
    res.end(req.method === 'HEAD' ? undefined : answer.body);
  });
}

/** Any method on /api/agents/<name>/<route> goes to the admin API; the API checks the signature first. */
function serveApi(req: IncomingMessage, res: ServerResponse, clientIp: string, admin: RemoteAdmin | undefined): void {
  const match = API_PATH.exec(pathOf(req.url ?? '/'));
  if (!admin || !match) return sendJson(res, 404, { error: 'the admin API is at /api/agents/<name>/status, /whitelist and /allow-me' });
  const agent = match[1]!;
  void serveAdminHttp(req, res, match[2]!, clientIp, (request) => admin.handle(agent, request));
}
