import { networkTooBroad } from '../admin/api.js';
import type { Actor, AdminAnswer, AdminBackend, ApiStatus, ApiWhitelistEntry, Outcome } from '../admin/api-types.js';
import { formatDuration } from '../common/duration.js';
import type { Logger } from '../common/logger.js';
import { formatAddress } from '../common/address.js';
import { DEFAULT_MAX_TTL_MS } from '../config/agent-types.js';
import { MAX_ADMIN_RESULT_CHARS, type AdminOrder } from '../protocol/messages.js';
import type { AgentStatus } from './status.js';
import { parseCidr } from '../common/cidr.js';
import { isLive, type Whitelist, type WhitelistEntry } from './whitelist/store.js';

export interface LocalAdminBackendOptions {
  whitelist: Whitelist;
  status: () => AgentStatus;
  /** The agent's own [admin] maxTtl; default DEFAULT_MAX_TTL_MS, as for an agent without an [admin] section. */
  maxTtlMs?: number;
  now?: () => number;
}

/**
 * The admin API applied to this agent's own whitelist: what the LAN admin listener and the rendezvous's
 * forwarded requests both end in. The whitelist persists each change atomically and tells the gate at once.
 * The agent's own limits hold here whoever sent the change: no network broader than the API allows, no
 * entry longer-lived than this agent's maxTtl, even when the rendezvous's policy is laxer.
 */
export function createLocalAdminBackend({ whitelist, status, maxTtlMs = DEFAULT_MAX_TTL_MS, now = Date.now }: LocalAdminBackendOptions): AdminBackend {
  return {
    async status() {
      return { ok: true, value: apiStatus(status()) };
    },
    async list() {
      const nowMs = now();
      const live = whitelist.entries().filter((entry) => isLive(entry, nowMs));
      return { ok: true, value: live.map(apiEntry) };
    },
    async add({ cidr, note, ttlMs }) {
      const parsed = parseCidr(cidr);
      if (!parsed.ok) return failure(400, `"${cidr}" ${parsed.error}`);
      const tooBroad = networkTooBroad(parsed.value);
      if (tooBroad !== undefined) return failure(400, tooBroad);
      if (ttlMs > maxTtlMs) {
        return failure(400, `ttl ${formatDuration(ttlMs)} is longer than agent ${status().agent}'s maximum of ${formatDuration(maxTtlMs)} (its [admin] maxTtl)`);
      }
      const added = await whitelist.add({ cidr: parsed.value.text, ttlMs, ...(note !== undefined ? { note } : {}) });
      return added.ok ? { ok: true, value: apiEntry(added.value) } : failure(500, added.error);
    },
    async remove(cidr) {
      const parsed = parseCidr(cidr);
      if (!parsed.ok) return failure(400, `"${cidr}" ${parsed.error}`);
      const text = parsed.value.text;
      const entries = whitelist.entries().filter((entry) => entry.cidr.text === text);
      if (!entries.some((entry) => entry.source === 'runtime')) {
        return entries.length > 0
          ? failure(409, `${text} comes from the config file's whitelist.allow; remove it there`)
          : failure(404, `${text} is not in the whitelist`);
      }
      const removed = await whitelist.remove(text);
      return removed.ok ? { ok: true, value: { removed: removed.value } } : failure(500, removed.error);
    },
  };
}

function failure(status: number, error: string): Outcome<never> {
  return { ok: false, status, error };
}

function apiStatus(status: AgentStatus): ApiStatus {
  return {
    agent: status.agent,
    online: status.connected,
    ...(status.publicAddress ? { publicAddress: formatAddress(status.publicAddress) } : {}),
    ...(status.reachable !== undefined ? { reachable: status.reachable } : {}),
    ...(status.reachableReason !== undefined ? { reason: status.reachableReason } : {}),
    ...(status.checkedAt !== undefined ? { checkedAt: status.checkedAt } : {}),
    ...(status.registeredAt !== undefined ? { registeredAt: status.registeredAt } : {}),
  };
}

function apiEntry(entry: WhitelistEntry): ApiWhitelistEntry {
  return {
    cidr: entry.cidr.text,
    ...(entry.note !== undefined ? { note: entry.note } : {}),
    ...(entry.expires ? { expires: entry.expires.toISOString() } : {}),
    ...(entry.added ? { added: entry.added.toISOString() } : {}),
    source: entry.source,
  };
}

/**
 * Carries out an order forwarded by the rendezvous, which has checked the signature and the scope already.
 * A change is logged here with the key and client address, so the agent's own log says who made it.
 */
export async function executeAdminOrder(backend: AdminBackend, order: AdminOrder, logger: Logger): Promise<AdminAnswer> {
  if (order.op !== 'list') logger.info({ op: order.op, cidr: order.cidr, keyId: order.keyId, client: order.client }, 'whitelist change through the rendezvous');
  const outcome = await runOrder(backend, order);
  if (!outcome.ok) return { status: outcome.status, body: JSON.stringify({ error: outcome.error }) };
  const body = JSON.stringify(outcome.value);
  if (body.length > MAX_ADMIN_RESULT_CHARS) {
    return { status: 507, body: JSON.stringify({ error: 'the whitelist is too long to send through the rendezvous; list it on the LAN admin listener' }) };
  }
  return { status: 200, body }; // the rendezvous's API picks the status its client sees (201 for an add)
}

/** The message parser has made sure each operation carries its fields (cidr, ttlMs, keyId, client). */
function runOrder(backend: AdminBackend, order: AdminOrder): Promise<Outcome<unknown>> {
  if (order.op === 'list') return backend.list();
  const actor: Actor = { keyId: order.keyId!, clientIp: order.client! };
  if (order.op === 'remove') return backend.remove(order.cidr!, actor);
  return backend.add({ cidr: order.cidr!, ttlMs: order.ttlMs!, ...(order.note !== undefined ? { note: order.note } : {}) }, actor);
}
