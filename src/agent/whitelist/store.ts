import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { writeFileAtomic } from '../../common/atomic-write.js';
import type { Logger } from '../../common/logger.js';
import { ConfigError } from '../../common/config-error.js';
import { isPlainObject } from '../../common/plain-object.js';
import { err, ok, type Result } from '../../common/result.js';
import type { WhitelistEntrySpec } from '../../config/agent-types.js';
import { parseCidr, type Cidr } from '../../common/cidr.js';
import { CidrSet } from '../../common/cidr-set.js';

export interface WhitelistEntry {
  cidr: Cidr;
  note?: string;
  expires?: Date;
  /** When a runtime entry was added; config entries have none. */
  added?: Date;
  source: 'config' | 'runtime';
}

export interface WhitelistOptions {
  /** The config file's `whitelist.allow`, already validated. */
  configEntries: WhitelistEntrySpec[];
  /** `<stateDir>/whitelist.json`: runtime entries, written atomically, watched for changes. */
  file: string;
  logger: Logger;
  /** Watch the file and reload on change (default true). */
  watch?: boolean;
  /** Quiet time after the last file event before reloading (default 100 ms): an editor writes in bursts. */
  reloadDebounceMs?: number;
  /**
   * The longest the expiry timer sleeps (default 1 min). On a steady clock an entry expires on the dot; this
   * bounds the delay after a wall-clock jump (an NTP sync after boot on a box without a real-time clock) and
   * how long an entry that was already expired when read stays in the file.
   */
  expiryRecheckMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface AddRequest {
  cidr: string;
  note?: string;
  /** Lifetime from now; or give `expires`. Neither = never expires. */
  ttlMs?: number;
  expires?: Date;
}

const FILE_VERSION = 1;
/** setTimeout fires at once for delays above 2^31 - 1 ms (about 24.8 days). */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;
const ENTRY_KEYS = new Set(['cidr', 'note', 'expires', 'added']);

/**
 * The whitelist: config entries plus runtime entries persisted in whitelist.json. Fails closed: a file that
 * cannot be read or parsed refuses to open, and a bad file during a live reload keeps the previous list.
 * Emits 'change' whenever the effective entries change, including the moment an entry expires.
 */
export class Whitelist extends EventEmitter<{ change: [] }> {
  private runtime: WhitelistEntry[] = [];
  private set: CidrSet<WhitelistEntry>;
  /** The file text last read or written, to tell our own writes and no-op events from real changes. */
  private fileText: string | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private watcher: FSWatcher | undefined;
  private reloadTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  /** The expiry the timer is armed for; undefined when it only wakes to prune already expired entries. */
  private nextExpiryMs: number | undefined;
  private closed = false;
  private warnedEmpty = false;
  private readonly now: () => number;

  private constructor(
    private readonly config: WhitelistEntry[],
    private readonly options: WhitelistOptions,
  ) {
    super();
    this.now = options.now ?? Date.now;
    this.set = new CidrSet(config);
  }

  /** Opens the whitelist; a runtime file it cannot read or trust throws a ConfigError (the agent does not start). */
  static async open(options: WhitelistOptions): Promise<Whitelist> {
    const config = options.configEntries.map((spec, index) => configEntry(spec, index));
    await mkdir(dirname(options.file), { recursive: true, mode: 0o700 });
    const loaded = await readRuntimeFile(options.file);
    if (!loaded.ok) throw new ConfigError([`${loaded.error}; homeport will not start with a whitelist it cannot read`]);
    const whitelist = new Whitelist(config, options);
    whitelist.apply(loaded.value);
    options.logger.info({ config: config.length, runtime: whitelist.runtime.length, file: options.file }, 'whitelist loaded');
    whitelist.warnIfEmpty();
    if (options.watch !== false) whitelist.startWatching();
    return whitelist;
  }

  /** Whether a connection from `address` may pass: it lies in a live entry. Anything else is denied. */
  allows(address: string, nowMs = this.now()): boolean {
    return this.set.match(address, nowMs) !== undefined;
  }

  /** The most specific live entry containing `address`, e.g. to log its note. */
  match(address: string, nowMs = this.now()): WhitelistEntry | undefined {
    return this.set.match(address, nowMs);
  }

  /** Every entry, config first, including expired runtime ones not yet pruned. */
  entries(): WhitelistEntry[] {
    return [...this.config, ...this.runtime];
  }

  /** Adds a runtime entry, or refreshes the note and expiry of the same network. */
  add(request: AddRequest): Promise<Result<WhitelistEntry>> {
    const entry = this.runtimeEntry(request);
    if (!entry.ok) return Promise.resolve(entry);
    return this.serialized(async () => {
      const current = await this.readForUpdate();
      if (!current.ok) return current;
      const kept = current.value.filter((existing) => existing.cidr.text !== entry.value.cidr.text);
      const written = await this.write([...kept, entry.value]);
      if (!written.ok) return written;
      this.options.logger.info({ cidr: entry.value.cidr.text, note: entry.value.note, expires: entry.value.expires }, 'whitelist entry added');
      return entry;
    });
  }

  /** Removes the runtime entries for `cidr`; config entries can only be removed in the config file. */
  remove(cidr: string): Promise<Result<number>> {
    const parsed = parseCidr(cidr);
    if (!parsed.ok) return Promise.resolve(err(`"${cidr}" ${parsed.error}`));
    const text = parsed.value.text;
    return this.serialized(async () => {
      const current = await this.readForUpdate();
      if (!current.ok) return current;
      const kept = current.value.filter((entry) => entry.cidr.text !== text);
      const removed = current.value.length - kept.length;
      if (removed === 0) {
        const inConfig = this.config.some((entry) => entry.cidr.text === text);
        return err(inConfig ? `${text} comes from the config file's whitelist.allow; remove it there` : `${text} is not in the runtime whitelist`);
      }
      const written = await this.write(kept);
      if (!written.ok) return written;
      this.options.logger.info({ cidr: text }, 'whitelist entry removed');
      return ok(removed);
    });
  }

  /**
   * Re-reads the file (SIGHUP, file change). A file that cannot be read or parsed keeps the previous list
   * and logs an error: a typo must neither drop everyone nor let everyone in. The value says whether the
   * entries changed.
   */
  reload(): Promise<Result<boolean>> {
    return this.serialized(async () => {
      const loaded = await readRuntimeFile(this.options.file);
      if (!loaded.ok) {
        this.options.logger.error({ file: this.options.file, problem: loaded.error }, 'whitelist file rejected; keeping the previous whitelist');
        return loaded;
      }
      if (loaded.value.text === this.fileText) return ok(false);
      this.apply(loaded.value);
      this.options.logger.info({ runtime: this.runtime.length, file: this.options.file }, 'whitelist reloaded');
      this.changed();
      return ok(true);
    });
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    clearTimeout(this.reloadTimer);
    clearTimeout(this.expiryTimer);
    this.closed = true;
  }

  private runtimeEntry(request: AddRequest): Result<WhitelistEntry> {
    const parsed = parseCidr(request.cidr);
    if (!parsed.ok) return err(`"${request.cidr}" ${parsed.error}`);
    if (request.ttlMs !== undefined && request.expires !== undefined) return err('give either a lifetime or an expiry date, not both');
    if (request.ttlMs !== undefined && !(request.ttlMs > 0 && Number.isFinite(request.ttlMs))) {
      return err(`lifetime ${request.ttlMs} ms is not a positive duration; write e.g. "24h"`);
    }
    const nowMs = this.now();
    const expires = request.ttlMs !== undefined ? new Date(nowMs + request.ttlMs) : request.expires;
    if (expires !== undefined && !(expires.getTime() > nowMs)) return err('the expiry date is not in the future');
    const entry: WhitelistEntry = { cidr: parsed.value, added: new Date(nowMs), source: 'runtime' };
    if (request.note !== undefined) entry.note = request.note;
    if (expires !== undefined) entry.expires = expires;
    return ok(entry);
  }

  /** The file's current entries before a change, so an edit made since the last reload is not overwritten. */
  private async readForUpdate(): Promise<Result<WhitelistEntry[]>> {
    const loaded = await readRuntimeFile(this.options.file);
    if (!loaded.ok) return err(`${loaded.error}; not changing it until it is fixed`);
    return ok(loaded.value.entries);
  }

  private async write(entries: WhitelistEntry[]): Promise<Result<void>> {
    const text = formatRuntimeFile(entries);
    try {
      await writeFileAtomic(this.options.file, text);
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code ?? String(error);
      return err(`${this.options.file}: cannot be written (${reason}); check the state directory's permissions and free space`);
    }
    this.apply({ entries, text });
    this.changed();
    return ok(undefined);
  }

  private apply(loaded: RuntimeFile): void {
    this.runtime = loaded.entries;
    this.fileText = loaded.text;
    this.set = new CidrSet([...this.config, ...this.runtime]);
    this.armExpiryTimer();
  }

  private changed(): void {
    this.warnIfEmpty();
    this.emit('change');
  }

  /** Says loudly, once per transition, that nobody can connect. */
  private warnIfEmpty(): void {
    const nowMs = this.now();
    const live = this.entries().some((entry) => isLive(entry, nowMs));
    if (!live && !this.warnedEmpty) {
      this.options.logger.warn(
        { file: this.options.file },
        'the whitelist is empty: every connection is denied; add addresses to whitelist.allow in the config or to the runtime whitelist',
      );
    }
    this.warnedEmpty = !live;
  }

  /**
   * Arms the one expiry timer for the earliest upcoming expiry, so 'change' fires (and the agent cuts the
   * open connections of an address no longer allowed) the moment an entry expires, not up to a minute later.
   * Re-armed whenever the entries change; no timer while nothing expires.
   */
  private armExpiryTimer(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    if (this.closed) return;
    const nowMs = this.now();
    let next = Infinity;
    for (const entry of this.entries()) {
      const expiresMs = entry.expires?.getTime() ?? Infinity;
      if (expiresMs > nowMs && expiresMs < next) next = expiresMs;
    }
    this.nextExpiryMs = Number.isFinite(next) ? next : undefined;
    const stale = this.runtime.some((entry) => !isLive(entry, nowMs));
    if (this.nextExpiryMs === undefined && !stale) return;
    const recheckMs = Math.min(this.options.expiryRecheckMs ?? 60_000, MAX_TIMER_DELAY_MS);
    const delayMs = Math.min((this.nextExpiryMs ?? Infinity) - nowMs, recheckMs);
    this.expiryTimer = setTimeout(() => void this.expire(), delayMs).unref();
  }

  /**
   * The expiry timer's work: drops expired runtime entries from the file (lookups already ignore them) and
   * says 'change' when an entry has expired. A timer that wakes early, or only to recheck, just re-arms.
   */
  private expire(): Promise<void> {
    return this.serialized(async () => {
      if (this.closed) return;
      const nowMs = this.now();
      const due = this.nextExpiryMs !== undefined && this.nextExpiryMs <= nowMs;
      const pruned = this.runtime.some((entry) => !isLive(entry, nowMs)) && (await this.prune(nowMs));
      if (due && !pruned) this.changed(); // a config entry expired, or the file could not be pruned
      this.armExpiryTimer();
    });
  }

  /** Rewrites the file without its expired entries; the write says 'change'. False when nothing was written. */
  private async prune(nowMs: number): Promise<boolean> {
    const current = await this.readForUpdate();
    if (!current.ok) return false; // a live reload has already reported the broken file
    for (const entry of current.value.filter((candidate) => !isLive(candidate, nowMs))) {
      this.options.logger.info({ cidr: entry.cidr.text, note: entry.note, expires: entry.expires }, 'whitelist entry expired');
    }
    const written = await this.write(current.value.filter((entry) => isLive(entry, nowMs)));
    if (!written.ok) this.options.logger.error({ problem: written.error }, 'could not prune expired whitelist entries');
    return written.ok;
  }

  /** Watches the directory, not the file: an atomic rename replaces the file and would end a file watch. */
  private startWatching(): void {
    const name = basename(this.options.file);
    try {
      this.watcher = watch(dirname(this.options.file), (_event, changed) => {
        if (changed !== null && changed !== name) return;
        clearTimeout(this.reloadTimer);
        this.reloadTimer = setTimeout(() => void this.reload(), this.options.reloadDebounceMs ?? 100);
      });
    } catch (error) {
      this.options.logger.error({ file: this.options.file, err: String(error) }, 'cannot watch the whitelist file; reload it with SIGHUP');
      return;
    }
    this.watcher.unref(); // a forgotten close() must not keep a process alive
    this.watcher.on('error', (error) => {
      this.options.logger.error({ file: this.options.file, err: error.message }, 'cannot watch the whitelist file any more; reload with SIGHUP');
    });
  }

  /** Runs file updates one at a time, so a reload never interleaves with an add. */
  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** Whether an entry still counts at `nowMs`: no expiry, or one still ahead. */
export function isLive(entry: WhitelistEntry, nowMs: number): boolean {
  return entry.expires === undefined || entry.expires.getTime() > nowMs;
}

function configEntry(spec: WhitelistEntrySpec, index: number): WhitelistEntry {
  const parsed = parseCidr(spec.cidr);
  if (!parsed.ok) throw new ConfigError([`whitelist.allow[${index}] "${spec.cidr}" ${parsed.error}`]);
  const entry: WhitelistEntry = { cidr: parsed.value, source: 'config' };
  if (spec.note !== undefined) entry.note = spec.note;
  if (spec.expires !== undefined) entry.expires = spec.expires;
  return entry;
}

interface RuntimeFile {
  entries: WhitelistEntry[];
  /** Undefined when the file does not exist. */
  text: string | undefined;
}

async function readRuntimeFile(file: string): Promise<Result<RuntimeFile>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return ok({ entries: [], text: undefined });
    return err(`${file}: cannot be read (${code ?? String(error)}); fix its permissions or remove it`);
  }
  const entries = parseRuntimeFile(text, file);
  return entries.ok ? ok({ entries: entries.value, text }) : entries;
}

/**
 * The runtime whitelist file: `{"version":1,"entries":[{"cidr","note"?,"expires"?,"added"?}]}`, dates in
 * ISO 8601. Strict: an unknown key is an error, because a misspelt "expires" would make an entry permanent.
 */
export function parseRuntimeFile(text: string, file: string): Result<WhitelistEntry[]> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    return err(`${file}: not valid JSON (${(error as Error).message}); fix it, or delete the file to drop all runtime entries`);
  }
  if (!isPlainObject(data) || !Array.isArray(data.entries)) {
    return err(`${file}: expected {"version": ${FILE_VERSION}, "entries": [...]}; fix it, or delete the file to drop all runtime entries`);
  }
  if (data.version !== FILE_VERSION) {
    return err(`${file}: version ${JSON.stringify(data.version)} is not supported (this homeport reads version ${FILE_VERSION})`);
  }
  const entries: WhitelistEntry[] = [];
  for (const [index, item] of data.entries.entries()) {
    const entry = parseFileEntry(item);
    if (!entry.ok) return err(`${file}: entries[${index}]${entry.error}; fix or remove this entry`);
    entries.push(entry.value);
  }
  return ok(entries);
}

/** Errors start with the key path below the entry (".cidr ...") or a space. */
function parseFileEntry(item: unknown): Result<WhitelistEntry> {
  if (!isPlainObject(item)) return err(' must be an object such as {"cidr": "192.168.1.0/24"}');
  const unknown = Object.keys(item).find((key) => !ENTRY_KEYS.has(key));
  if (unknown !== undefined) return err(` has an unknown key "${unknown}"; the keys are cidr, note, expires, added`);
  if (typeof item.cidr !== 'string') return err('.cidr is missing; write e.g. "cidr": "192.168.1.0/24"');
  const cidr = parseCidr(item.cidr);
  if (!cidr.ok) return err(`.cidr "${item.cidr}" ${cidr.error}`);
  const entry: WhitelistEntry = { cidr: cidr.value, source: 'runtime' };
  if (item.note !== undefined) {
    if (typeof item.note !== 'string') return err('.note must be a string');
    entry.note = item.note;
  }
  for (const key of ['expires', 'added'] as const) {
    if (item[key] === undefined) continue;
    const date = typeof item[key] === 'string' ? new Date(item[key]) : undefined;
    if (date === undefined || Number.isNaN(date.getTime())) return err(`.${key} must be a date such as "2030-01-01T00:00:00Z"`);
    entry[key] = date;
  }
  return ok(entry);
}

export function formatRuntimeFile(entries: WhitelistEntry[]): string {
  const items = entries.map((entry) => ({
    cidr: entry.cidr.text,
    note: entry.note,
    expires: entry.expires?.toISOString(),
    added: entry.added?.toISOString(),
  }));
  return `${JSON.stringify({ version: FILE_VERSION, entries: items }, null, 2)}\n`;
}
