import { parseDuration } from '../common/duration.js';
import { isPlainObject } from '../common/plain-object.js';
import type { Problems } from './problems.js';

/** A TOML table as smol-toml returns it. */
export type Table = Record<string, unknown>;

/**
 * Reads typed values out of one TOML table, reporting each problem with its full key path
 * (`tls.hostnames[1]`) instead of throwing, so one run lists every mistake in the file.
 */
export class TableReader {
  constructor(
    readonly table: Table,
    readonly path: string,
    readonly problems: Problems,
  ) {}

  key(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  /** Reports keys that no reader asked for: a typo must not be silently ignored. */
  rejectUnknown(known: readonly string[]): void {
    for (const name of Object.keys(this.table)) {
      if (!known.includes(name)) {
        this.problems.add(this.key(name), `is not a known key; known keys here: ${known.join(', ')}`);
      }
    }
  }

  string(name: string, fallback?: string): string | undefined {
    const value = this.table[name];
    if (value === undefined) {
      if (fallback === undefined) this.problems.add(this.key(name), 'is missing; add it');
      return fallback;
    }
    if (typeof value !== 'string' || value.length === 0) {
      this.problems.add(this.key(name), `must be a non-empty string (in quotes), not ${describe(value)}`);
      return undefined;
    }
    return value;
  }

  optionalString(name: string): string | undefined {
    return this.table[name] === undefined ? undefined : this.string(name);
  }

  oneOf<T extends string>(name: string, choices: readonly T[], fallback: T): T | undefined {
    const value = this.string(name, fallback);
    if (value === undefined) return undefined;
    if (!(choices as readonly string[]).includes(value)) {
      this.problems.add(this.key(name), `"${value}" is not one of ${choices.map((c) => `"${c}"`).join(', ')}`);
      return undefined;
    }
    return value as T;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.table[name];
    if (value === undefined) return fallback;
    if (typeof value !== 'boolean') {
      this.problems.add(this.key(name), `must be true or false, not ${describe(value)}`);
      return fallback;
    }
    return value;
  }

  /** A whole number from min to max. */
  integer(name: string, fallback: number, min: number, max: number): number {
    const value = this.table[name] ?? fallback;
    if (typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max) return value;
    this.problems.add(this.key(name), `must be a whole number from ${min} to ${max}; the default is ${fallback}`);
    return fallback;
  }

  /** A duration such as "30s"; `allowZero` lets "0" mean "never". */
  duration(name: string, fallbackMs: number, allowZero = false): number {
    const value = this.table[name];
    if (value === undefined) return fallbackMs;
    if (typeof value !== 'string') {
      this.problems.add(this.key(name), `must be a duration in quotes such as "30s", not ${describe(value)}`);
      return fallbackMs;
    }
    const parsed = parseDuration(value);
    if (!parsed.ok) {
      this.problems.add(this.key(name), parsed.error);
      return fallbackMs;
    }
    if (parsed.value === 0 && !allowZero) {
      this.problems.add(this.key(name), 'must be longer than 0');
      return fallbackMs;
    }
    return parsed.value;
  }

  stringArray(name: string, fallback?: string[]): string[] {
    const value = this.table[name];
    if (value === undefined) {
      if (fallback === undefined) this.problems.add(this.key(name), 'is missing; add a list such as ["a", "b"]');
      return fallback ?? [];
    }
    if (!Array.isArray(value)) {
      this.problems.add(this.key(name), `must be a list such as ["a", "b"], not ${describe(value)}`);
      return [];
    }
    return value.filter((item, index) => {
      if (typeof item === 'string' && item.length > 0) return true;
      this.problems.add(`${this.key(name)}[${index}]`, `must be a non-empty string, not ${describe(item)}`);
      return false;
    });
  }

  /** A sub-table (`[tls]`); a missing one reads as empty so its defaults apply. */
  child(name: string): TableReader {
    const value = this.table[name];
    if (value !== undefined && !isTable(value)) {
      this.problems.add(this.key(name), `must be a table ([${this.key(name)}]), not ${describe(value)}`);
    }
    return new TableReader(isTable(value) ? value : {}, this.key(name), this.problems);
  }

  /** An array of tables (`[[route]]`). */
  children(name: string): TableReader[] {
    const value = this.table[name];
    if (value === undefined) return [];
    if (!Array.isArray(value) || !value.every(isTable)) {
      this.problems.add(this.key(name), `must be one or more [[${this.key(name)}]] tables`);
      return [];
    }
    return value.map((item, index) => new TableReader(item, `${this.key(name)}[${index}]`, this.problems));
  }
}

export function isTable(value: unknown): value is Table {
  return isPlainObject(value);
}

export function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (isTable(value)) return 'a table';
  if (typeof value === 'string') return `"${value}"`;
  return String(value);
}
