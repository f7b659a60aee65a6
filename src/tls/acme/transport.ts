import { Agent } from 'node:https';
import { rootCertificates } from 'node:tls';
import acme from 'acme-client';

/**
 * How homeport's ACME requests travel: acme-client's shared axios instance, adjusted once per process.
 *
 * acme-client 5.4 retries a 429 or 5xx answer by re-sending the very same signed request, nonce included
 * (node-acme-client #103). The server has already used that nonce, so the retry earns a badNonce, which
 * acme-client answers with a fresh nonce, which meets the 429 again: a loop that hammers a rate-limited
 * CA and sleeps whatever Retry-After says inside one request. Its retry also dereferences a missing
 * response on network errors, hiding "connection refused" behind a TypeError. So homeport removes that
 * response interceptor: an error answer reaches acme-client as it is (its own badNonce retry, which does
 * take the fresh nonce from the error response, stays), and homeport retries the whole order later with
 * backoff, every request then signed with a new nonce.
 */

/** What the CA last answered on one origin, for error messages acme-client's bare Error strings lack. */
export interface Answer {
  url: string;
  status: number;
  /** The problem document's "type" without "urn:ietf:params:acme:error:" ("rateLimited", "badNonce"). */
  type?: string;
  detail?: string;
  /** From Retry-After, when the CA sent one. */
  retryAfterMs?: number;
}

interface Endpoint {
  ca: string | undefined;
  agent: Agent;
  last?: Answer;
}

/** How long one request may take; axios waits forever by default and a hung CA would stall renewal. */
const REQUEST_TIMEOUT_MS = 30_000;
const PROBLEM_PREFIX = 'urn:ietf:params:acme:error:';

const endpoints = new Map<string, Endpoint>();
let installed = false;

/**
 * Registers a directory: its origin's requests trust `ca` (PEM) besides the system's CAs and their
 * answers are recorded. Returns a function reading the last answer on that origin.
 */
export function useDirectory(directoryUrl: string, ca?: string): () => Answer | undefined {
  install();
  const origin = new URL(directoryUrl).origin;
  let endpoint = endpoints.get(origin);
  if (endpoint === undefined || endpoint.ca !== ca) {
    // tls.rootCertificates: adding `ca` must not replace the system's trust store
    endpoint?.agent.destroy();
    endpoint = { ca, agent: new Agent({ keepAlive: true, ...(ca !== undefined && { ca: [...rootCertificates, ca] }) }) };
    endpoints.set(origin, endpoint);
  }
  const current = endpoint;
  return () => current.last;
}

function install(): void {
  if (installed) return;
  installed = true;
  acme.axios.interceptors.response.clear();
  acme.axios.interceptors.request.use((config) => {
    const endpoint = endpointOf(config.url);
    if (endpoint) config.httpsAgent = endpoint.agent;
    config.timeout = REQUEST_TIMEOUT_MS;
    return config;
  });
  acme.axios.interceptors.response.use(undefined, (error: AxiosLikeError) => {
    // acme-client's request interceptor makes every answer an "error"; its HTTP client then judges the
    // status itself (retryValidateStatus null). A request without an answer stays the error it was.
    const { response, config } = error;
    if (!response || !config) throw error;
    const endpoint = endpointOf(config.url);
    if (endpoint) endpoint.last = response.status >= 400 ? answerOf(config.url!, response) : undefined;
    const validate = config.retryValidateStatus;
    if (!validate || validate(response.status)) return response;
    throw error;
  });
}

interface AxiosLikeResponse {
  status: number;
  data?: unknown;
  headers: Record<string, unknown>;
}

interface AxiosLikeError {
  response?: AxiosLikeResponse;
  config?: { url?: string; retryValidateStatus?: ((status: number) => boolean) | null };
}

function endpointOf(url: string | undefined): Endpoint | undefined {
  return url !== undefined && URL.canParse(url) ? endpoints.get(new URL(url).origin) : undefined;
}

function answerOf(url: string, response: AxiosLikeResponse): Answer {
  const problem = (typeof response.data === 'object' && response.data !== null ? response.data : {}) as { type?: unknown; detail?: unknown };
  const retryAfterMs = parseRetryAfter(response.headers['retry-after']);
  return {
    url,
    status: response.status,
    ...(typeof problem.type === 'string' && { type: problem.type.replace(PROBLEM_PREFIX, '') }),
    ...(typeof problem.detail === 'string' && { detail: problem.detail }),
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  };
}

/** Retry-After as seconds or as an HTTP date (RFC 9110 10.2.3). */
export function parseRetryAfter(value: unknown, now = Date.now()): number | undefined {
  if (typeof value !== 'string' || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
