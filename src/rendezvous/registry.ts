import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeFileAtomic } from '../common/atomic-write.js';
import type { Logger } from '../common/logger.js';
import { err, ok, type Result } from '../common/result.js';
import { isTable } from '../config/fields.js';
import type { PublicAddress } from '../common/address.js';
import { normalizeIp, sameAddress } from './addresses.js';

export type ReachabilityState = 'unknown' | 'reachable' | 'unreachable';

export interface Reachability {
  state: ReachabilityState;
  /** Why unreachable: "timeout", "refused", "wrong certificate"... */
  reason?: string;
  /** ISO time of the check; absent while state is unknown. */
  checkedAt?: string;
}

/** What the rendezvous knows about one configured agent. Times are ISO strings (they go to JSON as is). */
export interface AgentRecord {
  name: string;
  /** An authenticated control connection is open. Restored records start offline. */
  online: boolean;
  /** The agent's public (NAT-mapped) address as last observed. */
  publicAddress?: PublicAddress;
  /** When publicAddress was first observed. */
  since?: string;
  lastHeartbeat?: string;
  /** When the last control connection ended. */
  offlineSince?: string;
  reachability: Reachability;
  /** How often the observed address changed from one known address to another. */
  addressChanges: number;
  /** SHA-256 of the agent's TLS leaf, colon hex, as registered: what a reachability check must find. */
  fingerprint?: string;
  /** The agent's DNS name (DDNS), preferred over the ip in redirects. */
  publicHost?: string;
}

export interface Registration {
  observed: PublicAddress;
  fingerprint: string;
  publicHost?: string;
}

export interface RegistrationOutcome {
  record: Readonly<AgentRecord>;
  /** The address known before, when it differs from the one observed now. */
  previousAddress?: PublicAddress;
  addressChanged: boolean;
}

export interface ProbeOutcome {
  reachable: boolean;
  reason?: string;
  checkedAt: Date;
}

export interface RegistryOptions {
  /** `<stateDir>/registry.json`. */
  file: string;
  /** The configured agent names: only these have records. */
  agents: readonly string[];
  logger: Logger;
  /** Clock for the recorded times (tests set it). */
  now?: () => Date;
  /** Longest delay before a state change reaches the file (default 1 s). */
  writeDelayMs?: number;
  /**
   * Longest delay before a routine change reaches the file (default 60 s): a heartbeat, or a reachability
   * check that found what the previous one found. They are frequent and cheap to lose.
   */
  routineWriteDelayMs?: number;
}

const FILE_VERSION = 1;

/**
 * Agent name → public address, liveness and reachability, persisted in registry.json so that a restarted
 * rendezvous still knows the last addresses (as offline until each agent reconnects). Every change goes to
 * the file within writeDelayMs; writes are throttled, not postponed, so constant churn still gets written.
 */
export class Registry {
  private readonly records = new Map<string, AgentRecord>();
  private readonly now: () => Date;
  private readonly log: Logger;
  private writeTimer: NodeJS.Timeout | undefined;
  private writeDue = Infinity;
  private dirty = false;
  private writing: Promise<void> = Promise.resolve();

  private constructor(private readonly options: RegistryOptions) {
    this.now = options.now ?? (() => new Date());
    this.log = options.logger.child({ component: 'registry' });
    for (const name of options.agents) this.records.set(name, emptyRecord(name));
  }

  static async open(options: RegistryOptions): Promise<Registry> {
    const registry = new Registry(options);
    await mkdir(dirname(options.file), { recursive: true, mode: 0o700 });
    await registry.restore();
    return registry;
  }

  get(name: string): Readonly<AgentRecord> | undefined {
    return this.records.get(name);
  }

  all(): Readonly<AgentRecord>[] {
    return [...this.records.values()];
  }

  /** A successful handshake: the agent is online at `observed`. */
  register(name: string, registration: Registration): RegistrationOutcome {
    const record = this.require(name);
    const now = this.now().toISOString();
    const previous = record.publicAddress;
    const addressChanged = !sameAddress(previous, registration.observed);
    if (addressChanged) {
      if (previous !== undefined) record.addressChanges++;
      record.publicAddress = { ...registration.observed };
      record.since = now;
    }
    if (addressChanged || record.fingerprint !== registration.fingerprint) record.reachability = { state: 'unknown' };
    record.fingerprint = registration.fingerprint;
    record.publicHost = registration.publicHost;
    if (registration.publicHost === undefined) delete record.publicHost;
    record.online = true;
    record.lastHeartbeat = now;
    delete record.offlineSince;
    this.changed();
    return addressChanged && previous !== undefined
      ? { record, addressChanged: true, previousAddress: previous }
      : { record, addressChanged: false };
  }

  heartbeat(name: string): void {
    this.require(name).lastHeartbeat = this.now().toISOString();
    this.changed(this.lazyDelayMs);
  }

  markOffline(name: string): void {
    const record = this.require(name);
    if (!record.online) return;
    record.online = false;
    record.offlineSince = this.now().toISOString();
    this.changed();
  }

  /**
   * Stores a reachability result, unless the agent has moved on since the check started: a result for an
   * old address or certificate says nothing about the current one. Returns whether it was stored.
   */
  recordReachability(name: string, checked: { address: PublicAddress; fingerprint: string }, outcome: ProbeOutcome): boolean {
    const record = this.require(name);
    if (!sameAddress(record.publicAddress, checked.address) || record.fingerprint !== checked.fingerprint) return false;
    const before = record.reachability;
    record.reachability = {
      state: outcome.reachable ? 'reachable' : 'unreachable',
      ...(outcome.reason !== undefined && !outcome.reachable ? { reason: outcome.reason } : {}),
      checkedAt: outcome.checkedAt.toISOString(),
    };
    // the same verdict again only moves checkedAt: as cheap to lose as a heartbeat
    const same = before.state === record.reachability.state && before.reason === record.reachability.reason;
    this.changed(same ? this.lazyDelayMs : undefined);
    return true;
  }

  /** Writes pending changes now. */
  flush(): Promise<void> {
    clearTimeout(this.writeTimer);
    this.writeTimer = undefined;
    this.writeDue = Infinity;
    this.writing = this.writing.then(() => this.write());
    return this.writing;
  }

  /** Flushes and stops the write timer. */
  close(): Promise<void> {
    return this.flush();
  }

  private get lazyDelayMs(): number {
    return this.options.routineWriteDelayMs ?? 60_000;
  }

  private require(name: string): AgentRecord {
    const record = this.records.get(name);
    if (!record) throw new Error(`agent "${name}" is not configured`);
    return record;
  }

  private changed(delayMs = this.options.writeDelayMs ?? 1000): void {
    this.dirty = true;
    const due = Date.now() + delayMs;
    if (due >= this.writeDue) return; // an earlier write is already scheduled and will include this change
    clearTimeout(this.writeTimer);
    this.writeDue = due;
    this.writeTimer = setTimeout(() => void this.flush(), delayMs);
    this.writeTimer.unref();
  }

  private async write(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    try {
      await writeFileAtomic(this.options.file, serializeRegistry(this.all()));
    } catch (error) {
      this.log.error({ err: (error as Error).message, file: this.options.file }, 'cannot write the registry; will retry');
      this.changed();
    }
  }

  private async restore(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.options.file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new Error(`${this.options.file}: cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)}); fix its permissions or remove it`);
    }
    const parsed = parseRegistry(text);
    if (!parsed.ok) {
      // The registry is a cache of what agents report; they re-register within a heartbeat or two.
      this.log.warn({ file: this.options.file }, `registry not restored, starting empty: ${parsed.error}`);
      return;
    }
    for (const restored of parsed.value) {
      if (!this.records.has(restored.name)) {
        this.log.info({ agent: restored.name }, 'dropping the registry entry of an agent no longer configured');
        continue;
      }
      const offlineSince = restored.online ? restored.lastHeartbeat : restored.offlineSince;
      this.records.set(restored.name, { ...restored, online: false, ...(offlineSince ? { offlineSince } : {}) });
    }
    this.log.info({ agents: parsed.value.length }, 'registry restored; agents are offline until they reconnect');
  }
}

function emptyRecord(name: string): AgentRecord {
  return { name, online: false, reachability: { state: 'unknown' }, addressChanges: 0 };
}

export function serializeRegistry(records: readonly Readonly<AgentRecord>[]): string {
  return `${JSON.stringify({ version: FILE_VERSION, agents: records }, null, 2)}\n`;
}

/** Pure: registry.json text → records. Rejects the whole file on any malformed record: it is written only by us. */
export function parseRegistry(text: string): Result<AgentRecord[]> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return err(`not valid JSON (${(error as Error).message})`);
  }
  if (!isTable(data) || data.version !== FILE_VERSION || !Array.isArray(data.agents)) {
    return err(`not a version ${FILE_VERSION} registry ({ "version": ${FILE_VERSION}, "agents": [...] })`);
  }
  const records: AgentRecord[] = [];
  for (const [index, item] of data.agents.entries()) {
    const record = parseRecord(item);
    if (!record) return err(`agents[${index}] is malformed`);
    records.push(record);
  }
  return ok(records);
}

const REACHABILITY_STATES: readonly string[] = ['unknown', 'reachable', 'unreachable'];

function parseRecord(item: unknown): AgentRecord | undefined {
  if (!isTable(item) || typeof item.name !== 'string' || typeof item.online !== 'boolean') return undefined;
  if (typeof item.addressChanges !== 'number' || !Number.isInteger(item.addressChanges) || item.addressChanges < 0) return undefined;
  const reachability = item.reachability;
  if (!isTable(reachability) || !REACHABILITY_STATES.includes(reachability.state as string)) return undefined;
  if (!optional(reachability.reason, isString) || !optional(reachability.checkedAt, isTime)) return undefined;
  for (const key of ['since', 'lastHeartbeat', 'offlineSince'] as const) if (!optional(item[key], isTime)) return undefined;
  if (!optional(item.fingerprint, isString) || !optional(item.publicHost, isString)) return undefined;
  if (!optional(item.publicAddress, isPublicAddress)) return undefined;
  return item as unknown as AgentRecord;
}

function optional(value: unknown, check: (value: unknown) => boolean): boolean {
  return value === undefined || check(value);
}

function isString(value: unknown): boolean {
  return typeof value === 'string';
}

function isTime(value: unknown): boolean {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}

function isPublicAddress(value: unknown): boolean {
  if (!isTable(value) || typeof value.ip !== 'string' || normalizeIp(value.ip) !== value.ip) return false;
  return Number.isInteger(value.port) && (value.port as number) >= 1 && (value.port as number) <= 65535;
}
