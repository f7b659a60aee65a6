import { AdminApi } from '../admin/api.js';
import type { Actor, AdminAnswer, AdminBackend, AdminHttpRequest, AdminHttpResponse, ApiStatus, Outcome } from '../admin/api-types.js';
import type { KeyStore } from '../admin/key-store.js';
import type { Logger } from '../common/logger.js';
import type { Result } from '../common/result.js';
import { formatAddress } from '../common/address.js';
import { MAX_ADMIN_RESULT_CHARS, type AdminOrder, type AdminResultMessage } from '../protocol/messages.js';
import type { PathChoice } from './path.js';
import type { AgentRecord } from './registry.js';
import { isPlainObject } from '../common/plain-object.js';

/** How long the rendezvous waits for an agent to answer a forwarded admin request (then 504). */
export const DEFAULT_ADMIN_TIMEOUT_MS = 5_000;
/** Requests one agent connection may have in flight; more get 503 at once. */
export const MAX_PENDING_ADMIN_REQUESTS = 32;

/** The text an agent answered, or why there is none (with the HTTP status the API answers then). */
export type AdminReply = Outcome<AdminAnswer>;

interface Pending {
  resolve: (reply: AdminReply) => void;
  timer: NodeJS.Timeout;
  status?: number;
  parts: string[];
  chars: number;
}

/**
 * The admin requests waiting on one agent connection: numbers them, joins the parts of each answer, and
 * settles each exactly once: answered, timed out (504), or the connection ended (503).
 */
export class PendingAdminRequests {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly agent: string, private readonly timeoutMs: number) {}

  /** Sends an order with a fresh id through `send` and waits for the answer. */
  request(order: Omit<AdminOrder, 'id'>, send: (order: AdminOrder) => Result<void>): Promise<AdminReply> {
    if (this.pending.size >= MAX_PENDING_ADMIN_REQUESTS) {
      return Promise.resolve({ ok: false, status: 503, error: `${this.agent} has ${this.pending.size} admin requests in flight; try again shortly` });
    }
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.settle(id, { ok: false, status: 504, error: `${this.agent} did not answer within ${this.timeoutMs / 1000} s` }), this.timeoutMs);
      this.pending.set(id, { resolve, timer, parts: [], chars: 0 });
      const sent = send({ ...order, id });
      if (!sent.ok) this.settle(id, { ok: false, status: 502, error: `cannot forward the request to ${this.agent}: ${sent.error}` });
    });
  }

  /** A part of an answer. A part for no waiting request (it timed out) is dropped. */
  receive(part: AdminResultMessage): void {
    const waiting = this.pending.get(part.id);
    if (!waiting) return;
    waiting.status ??= part.status;
    waiting.parts.push(part.body);
    waiting.chars += part.body.length;
    if (waiting.chars > MAX_ADMIN_RESULT_CHARS) {
      this.settle(part.id, { ok: false, status: 502, error: `${this.agent} sent an answer longer than ${MAX_ADMIN_RESULT_CHARS} characters` });
    } else if (!part.more) {
      this.settle(part.id, { ok: true, value: { status: waiting.status, body: waiting.parts.join('') } });
    }
  }

  /** The connection ended: nothing more will be answered on it. */
  failAll(): void {
    for (const id of [...this.pending.keys()]) {
      this.settle(id, { ok: false, status: 503, error: `the connection to ${this.agent} ended before it answered; try again when it is back` });
    }
  }

  private settle(id: number, reply: AdminReply): void {
    const waiting = this.pending.get(id);
    if (!waiting) return;
    this.pending.delete(id);
    clearTimeout(waiting.timer);
    waiting.resolve(reply);
  }
}

/** What the rendezvous's admin API needs to reach the agents. */
export interface AgentDirectory {
  /** The record of a configured agent, undefined for any other name. */
  lookup(name: string): Readonly<AgentRecord> | undefined;
  /** How users reach the agent now (see choosePath). */
  pathOf(record: Readonly<AgentRecord>): PathChoice;
  /** Sends an order on the agent's current control connection and waits for its answer. */
  requestAdmin(agent: string, order: Omit<AdminOrder, 'id'>): Promise<AdminReply>;
}

export interface RemoteAdminOptions {
  keys: KeyStore;
  agents: AgentDirectory;
  logger: Logger;
  allowMeTtlMs: number;
  maxTtlMs: number;
}

/**
 * The admin API at `/api/agents/<name>/...`: the same AdminApi as on the agent, verified with the
 * rendezvous's own keys, applied to the named agent over its control connection. One AdminApi serves every
 * agent, so a client's failure budget and the replay cache are per rendezvous, not per agent.
 */
export class RemoteAdmin {
  private readonly api: AdminApi;

  constructor(private readonly options: RemoteAdminOptions) {
    this.api = new AdminApi({ keys: options.keys, logger: options.logger, allowMeTtlMs: options.allowMeTtlMs, maxTtlMs: options.maxTtlMs });
  }

  handle(agent: string, request: AdminHttpRequest): Promise<AdminHttpResponse> {
    return this.api.handle(request, remoteBackend(agent, this.options.agents));
  }
}

/** An AdminBackend for the agent `name`: status from the registry, whitelist from the agent. */
function remoteBackend(name: string, agents: AgentDirectory): AdminBackend {
  /** The configured agent, or a 404 (only an authenticated client gets this far: no probing for names). */
  const find = (): Outcome<Readonly<AgentRecord>> => {
    const record = agents.lookup(name);
    return record ? { ok: true, value: record } : { ok: false, status: 404, error: `no agent named "${name.slice(0, 63)}" on this rendezvous` };
  };
  const ask = async <T>(order: Omit<AdminOrder, 'id'>): Promise<Outcome<T>> => {
    const found = find();
    if (!found.ok) return found;
    const offline = offlineReason(found.value);
    if (offline !== undefined) return { ok: false, status: 503, error: offline };
    return outcomeOf<T>(found.value.name, await agents.requestAdmin(found.value.name, order));
  };
  const actorFields = (actor: Actor): Pick<AdminOrder, 'keyId' | 'client'> => ({ keyId: actor.keyId, client: actor.clientIp });
  return {
    async status() {
      const found = find();
      return found.ok ? { ok: true, value: { ...statusOf(found.value), ...pathOf(agents, found.value) } } : found;
    },
    list: () => ask({ op: 'list' }),
    add: ({ cidr, note, ttlMs }, actor) => ask({ op: 'add', cidr, ttlMs, ...(note !== undefined ? { note } : {}), ...actorFields(actor) }),
    remove: (cidr, actor) => ask({ op: 'remove', cidr, ...actorFields(actor) }),
  };
}

function offlineReason(record: Readonly<AgentRecord>): string | undefined {
  if (record.online) return undefined;
  return record.offlineSince
    ? `${record.name} is offline since ${record.offlineSince}; the change can be made once it reconnects`
    : `${record.name} has not connected to this rendezvous yet`;
}

/**
 * The agent's answer as the backend's outcome: its value, or its error with its status. The value is taken
 * as the type the API expects: the agent is authenticated and answers with the same backend code.
 */
function outcomeOf<T>(agent: string, reply: AdminReply): Outcome<T> {
  if (!reply.ok) return reply;
  const { status, body } = reply.value;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { ok: false, status: 502, error: `${agent} sent an answer that is not JSON` };
  }
  if (status < 400) return { ok: true, value: value as T };
  const error = isPlainObject(value) && typeof value.error === 'string' ? value.error : `${agent} refused the request (${status})`;
  return { ok: false, status, error };
}

/** The path `/go/` takes for the agent now, and why. */
function pathOf(agents: AgentDirectory, record: Readonly<AgentRecord>): Pick<ApiStatus, 'path' | 'pathReason'> {
  const { path, reason } = agents.pathOf(record);
  return { path, pathReason: reason };
}

function statusOf(record: Readonly<AgentRecord>): ApiStatus {
  const { state, reason, checkedAt } = record.reachability;
  return {
    agent: record.name,
    online: record.online,
    ...(record.publicAddress ? { publicAddress: formatAddress(record.publicAddress) } : {}),
    ...(state !== 'unknown' ? { reachable: state === 'reachable' } : {}),
    ...(reason !== undefined ? { reason } : {}),
    ...(checkedAt !== undefined ? { checkedAt } : {}),
  };
}
