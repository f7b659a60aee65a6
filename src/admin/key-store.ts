import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { chown, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic, type FileOwner } from '../common/atomic-write.js';
import type { Logger } from '../common/logger.js';
import { isPlainObject } from '../common/plain-object.js';
import { err, ok, type Result } from '../common/result.js';
import { describeOffset, jsonErrorOffset } from '../common/json-position.js';
import { ConfigError } from '../common/config-error.js';
import { isScope, type Scope } from './scopes.js';
import { KEY_ID_PATTERN, KEY_SECRET_PATTERN, type AdminKey } from '../common/admin-key.js';

/** The key store's name inside a program's stateDir. */
export const KEY_STORE_FILE = 'admin-keys.json';

export function keyStorePath(stateDir: string): string {
  return join(stateDir, KEY_STORE_FILE);
}

/**
 * An admin key as stored: id (12 lower-case hex digits, public, sent with every request) and secret (32
 * random bytes as base64url, never logged, never listed). The secret itself is kept: HMAC verification
 * needs it, a hash would not do.
 */
export interface StoredKey extends AdminKey {
  scopes: Scope[];
  note?: string;
  /** ISO 8601. */
  created: string;
}

/** What `keys list` shows: everything but the secret. */
export type KeyInfo = Omit<StoredKey, 'secret'>;

export const MAX_NOTE_CHARS = 200;

const FILE_VERSION = 1;
const KEY_FIELDS = new Set(['id', 'secret', 'scopes', 'note', 'created']);
const FIX = 'fix it, or delete it and create keys again with "homeport keygen"';

/** The file as last seen: identity, size and times change whenever anyone rewrites or edits it. */
type Fingerprint = string;
const MISSING: Fingerprint = 'missing';
/** Matches no file: forces the next lookup to read. */
const STALE: Fingerprint = '';

/**
 * The admin keys of one program, in `<stateDir>/admin-keys.json` (mode 0600, written atomically).
 * Fails closed: a file that cannot be read or parsed refuses to open, and one broken while running makes
 * every lookup fail until it is fixed. Each lookup stats the file and re-reads it when it changed, so keys
 * added or revoked by `homeport keygen`/`keys revoke` from another process count from the next request.
 */
export class KeyStore {
  private keys = new Map<string, StoredKey>();
  private fingerprint: Fingerprint = MISSING;
  /** The file changed into something unreadable: no key verifies until it is fixed. */
  private broken = false;
  private refreshing: Promise<void> | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly file: string, private readonly logger: Logger) {}

  /**
   * Opens the store; a missing file means no keys, an unreadable or corrupt one throws a ConfigError (exit
   * code 2: a daemon does not start, and is not restarted, without readable keys).
   */
  static async open(file: string, logger: Logger): Promise<KeyStore> {
    const store = new KeyStore(file, logger);
    const loaded = await readKeyFile(file);
    if (!loaded.ok) throw new ConfigError([loaded.error]);
    store.apply(loaded.value);
    logger.info({ file, keys: store.keys.size }, 'admin keys loaded');
    return store;
  }

  /** The key with this id as the file holds it now, or undefined (unknown, revoked, or the file is broken). */
  async lookup(id: string): Promise<StoredKey | undefined> {
    await this.refresh();
    return this.broken ? undefined : this.keys.get(id);
  }

  /** Every key without its secret, oldest first. */
  async list(): Promise<KeyInfo[]> {
    await this.refresh();
    return [...this.keys.values()].map(withoutSecret);
  }

  /** Creates a key with a fresh id and secret; the caller shows the secret once. */
  add(request: { scopes: Scope[]; note?: string }): Promise<Result<StoredKey>> {
    if (request.scopes.length === 0) return Promise.resolve(err('a key needs at least one scope'));
    const note = request.note;
    const problem = note === undefined ? undefined : noteProblem(note);
    if (problem !== undefined) return Promise.resolve(err(`the note ${problem}`));
    return this.update((keys) => {
      let id: string;
      do id = randomBytes(6).toString('hex'); while (keys.has(id));
      const key: StoredKey = {
        id, secret: randomBytes(32).toString('base64url'), scopes: [...request.scopes],
        ...(note !== undefined ? { note } : {}), created: new Date().toISOString(),
      };
      keys.set(id, key);
      this.logger.info({ keyId: id, scopes: key.scopes, note }, 'admin key added');
      return key;
    });
  }

  /** Removes a key; the value is the removed key, or undefined when there was no key with this id. */
  revoke(id: string): Promise<Result<KeyInfo | undefined>> {
    return this.update((keys) => {
      const key = keys.get(id);
      if (!key) return undefined;
      keys.delete(id);
      this.logger.info({ keyId: id }, 'admin key revoked');
      return withoutSecret(key);
    });
  }

  /** Read-modify-write from the file's current content, one change at a time, then an atomic write. */
  private update<T>(change: (keys: Map<string, StoredKey>) => T): Promise<Result<T>> {
    const task = async (): Promise<Result<T>> => {
      const current = await readKeyFile(this.file);
      if (!current.ok) return err(`${current.error}; not changing it until it is fixed`);
      const keys = new Map(current.value.keys.map((key) => [key.id, key]));
      const value = change(keys);
      try {
        await this.write(formatKeyFile([...keys.values()]));
      } catch (error) {
        const reason = (error as NodeJS.ErrnoException).code ?? String(error);
        return err(`${this.file}: cannot be written (${reason}); check the state directory's permissions and free space`);
      }
      this.fingerprint = STALE; // the next lookup re-reads what was just written
      return ok(value);
    };
    const run = this.queue.then(task, task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Writes the file, creating the state folder if need be. Run as root (`sudo homeport keygen`), the file
   * and any folder created for it get the owner the service user gave them (see inheritedOwner): a
   * root-owned 0600 file would lock the daemon out of its own keys.
   */
  private async write(text: string): Promise<void> {
    const folder = resolve(dirname(this.file));
    const owner = process.getuid?.() === 0 ? await inheritedOwner(this.file) : undefined;
    const created = await mkdir(folder, { recursive: true, mode: 0o700 });
    if (owner && created !== undefined) {
      for (let path = folder; ; path = dirname(path)) {
        await chown(path, owner.uid, owner.gid);
        if (path === created || dirname(path) === path) break;
      }
    }
    await writeFileAtomic(this.file, text, 0o600, owner);
  }

  /** Re-reads the file when its fingerprint changed; concurrent lookups share one refresh. */
  private refresh(): Promise<void> {
    this.refreshing ??= this.refreshNow().finally(() => { this.refreshing = undefined; });
    return this.refreshing;
  }

  private async refreshNow(): Promise<void> {
    const seen = await fingerprintOf(this.file);
    if (seen.ok && seen.value === this.fingerprint) return;
    const loaded = seen.ok ? await readKeyFile(this.file) : seen;
    if (!loaded.ok) {
      this.logger.error({ file: this.file, problem: loaded.error }, 'admin key file rejected: every admin request is refused until it is fixed');
      this.broken = true;
      // A broken file is not re-read until it changes again; an unreadable one is retried next time.
      this.fingerprint = seen.ok ? seen.value : STALE;
      return;
    }
    this.apply(loaded.value);
    this.logger.info({ file: this.file, keys: this.keys.size }, 'admin keys reloaded');
  }

  private apply(loaded: KeyFile): void {
    this.keys = new Map(loaded.keys.map((key) => [key.id, key]));
    this.fingerprint = loaded.fingerprint;
    this.broken = false;
    if (loaded.exposed) {
      this.logger.warn({ file: this.file }, `the admin key file can be read by other users; fix with: chmod 600 ${this.file}`);
    }
  }
}

/** Why a note (of a key or a whitelist entry) is refused, or undefined: notes are one short line in logs and lists. */
export function noteProblem(note: string): string | undefined {
  if (note.length > MAX_NOTE_CHARS) return `is ${note.length} characters long; keep it to ${MAX_NOTE_CHARS}`;
  if (/\p{Cc}/u.test(note)) return 'must be one line without control characters';
  return undefined;
}

/**
 * The owner of the key file being replaced, else of the state folder, else (when that is still to be
 * created) of its nearest existing parent: whoever the service runs as set these up.
 */
async function inheritedOwner(file: string): Promise<FileOwner | undefined> {
  for (let path = resolve(file); ; path = dirname(path)) {
    const info = await stat(path).catch(() => undefined);
    if (info) return { uid: info.uid, gid: info.gid };
    if (dirname(path) === path) return undefined;
  }
}

function withoutSecret(key: StoredKey): KeyInfo {
  const { secret: _secret, ...info } = key;
  return info;
}

interface KeyFile {
  keys: StoredKey[];
  fingerprint: Fingerprint;
  /** Group or others may read it. */
  exposed: boolean;
}

function fingerprint(info: Stats): Fingerprint {
  return `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
}

async function fingerprintOf(file: string): Promise<Result<Fingerprint>> {
  try {
    return ok(fingerprint(await stat(file)));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? ok(MISSING) : err(`${file}: cannot be read (${code ?? String(error)}); fix its permissions`);
  }
}

/** Reads the file; the fingerprint is taken first, so a change during the read is noticed next time. */
async function readKeyFile(file: string): Promise<Result<KeyFile>> {
  let info: Stats;
  let text: string;
  try {
    info = await stat(file);
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return ok({ keys: [], fingerprint: MISSING, exposed: false });
    return err(`${file}: cannot be read (${code ?? String(error)}); fix its permissions`);
  }
  const keys = parseKeyFile(text, file);
  return keys.ok ? ok({ keys: keys.value, fingerprint: fingerprint(info), exposed: (info.mode & 0o077) !== 0 }) : keys;
}

function formatKeyFile(keys: StoredKey[]): string {
  return `${JSON.stringify({ version: FILE_VERSION, keys }, null, 2)}\n`;
}

/**
 * `{"version":1,"keys":[{"id","secret","scopes":[...],"note"?,"created"}]}`. Strict: an unknown field or
 * scope is an error rather than something silently ignored or granted.
 */
export function parseKeyFile(text: string, file: string): Result<StoredKey[]> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text around the mistake, which here may be a secret: only say where
    return err(`${file}: not valid JSON at ${describeOffset(text, jsonErrorOffset(text))}; ${FIX}`);
  }
  if (!isPlainObject(data) || !Array.isArray(data.keys)) return err(`${file}: expected {"version": ${FILE_VERSION}, "keys": [...]}; ${FIX}`);
  if (data.version !== FILE_VERSION) {
    return err(`${file}: version ${JSON.stringify(data.version)} is not supported (this homeport reads version ${FILE_VERSION})`);
  }
  const keys: StoredKey[] = [];
  for (const [index, item] of data.keys.entries()) {
    const key = parseStoredKey(item);
    if (!key.ok) return err(`${file}: keys[${index}]${key.error}; ${FIX}`);
    if (keys.some((other) => other.id === key.value.id)) return err(`${file}: keys[${index}] repeats the id ${key.value.id}; ${FIX}`);
    keys.push(key.value);
  }
  return ok(keys);
}

function parseStoredKey(item: unknown): Result<StoredKey> {
  if (!isPlainObject(item)) return err(' is not an object');
  const unknown = Object.keys(item).find((field) => !KEY_FIELDS.has(field));
  if (unknown !== undefined) return err(`.${unknown} is not a known field (known: ${[...KEY_FIELDS].join(', ')})`);
  const { id, secret, scopes, note, created } = item;
  if (typeof id !== 'string' || !KEY_ID_PATTERN.test(id)) return err('.id must be 12 lower-case hex digits');
  if (typeof secret !== 'string' || !KEY_SECRET_PATTERN.test(secret)) return err(`.secret of key ${id} must be 43 base64url characters`);
  if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every(isScope)) {
    return err(`.scopes of key ${id} must be a non-empty list of "status:read" and "whitelist:write"`);
  }
  if (note !== undefined && typeof note !== 'string') return err(`.note of key ${id} must be a string`);
  if (typeof created !== 'string' || Number.isNaN(Date.parse(created))) return err(`.created of key ${id} must be an ISO 8601 date`);
  return ok({ id, secret, scopes: [...new Set(scopes)], ...(note !== undefined ? { note } : {}), created });
}
