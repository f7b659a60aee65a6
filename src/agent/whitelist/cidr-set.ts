import { maskWords, parseAddressInto, type Cidr } from './cidr.js';

export interface CidrSetEntry {
  cidr: Cidr;
  note?: string;
  /** Absolute expiry; undefined = never. An expired entry never matches. */
  expires?: Date;
}

/**
 * The whitelist's lookup index. A linear scan costs a comparison per entry on every accepted connection;
 * instead there is one hash table per distinct prefix length, keyed by the masked network, and a lookup
 * probes only the prefix lengths present (at most 33 for IPv4, 129 for IPv6), longest first.
 * Immutable: a changed whitelist builds a new set.
 */
export class CidrSet<E extends CidrSetEntry = CidrSetEntry> {
  private readonly ipv4: PrefixTable<E>[];
  private readonly ipv6: PrefixTable<E>[];
  /** The parsed client address; reused so a lookup does not allocate. */
  private readonly address = new Int32Array(4);
  readonly size: number;

  constructor(entries: Iterable<E>) {
    const byFamilyAndPrefix = new Map<string, E[]>();
    let size = 0;
    for (const entry of entries) {
      const key = `${entry.cidr.family}/${entry.cidr.prefix}`;
      const list = byFamilyAndPrefix.get(key) ?? [];
      list.push(entry);
      byFamilyAndPrefix.set(key, list);
      size++;
    }
    const tables = [...byFamilyAndPrefix.values()]
      .map((list) => new PrefixTable(list))
      .sort((a, b) => b.prefix - a.prefix);
    this.ipv4 = tables.filter((table) => table.family === 4);
    this.ipv6 = tables.filter((table) => table.family === 6);
    this.size = size;
  }

  /**
   * The most specific live entry containing `address` (IPv4, IPv6 with or without zone id, or IPv4-mapped
   * IPv6, which matches IPv4 entries), or undefined when none does or the text is not an address.
   */
  match(address: string, nowMs: number): E | undefined {
    const words = this.address;
    const family = parseAddressInto(address, words);
    if (family === 0) return undefined;
    const tables = family === 4 ? this.ipv4 : this.ipv6;
    for (let i = 0; i < tables.length; i++) {
      const found = tables[i]!.find(words, nowMs);
      if (found !== undefined) return found;
    }
    return undefined;
  }
}

/**
 * Open-addressing hash table of the networks of one family and prefix length. Keys live in one Int32Array
 * (four words a slot) so a probe compares numbers without allocating; the table is at most half full.
 */
class PrefixTable<E extends CidrSetEntry> {
  readonly family: 4 | 6;
  readonly prefix: number;
  private readonly masks = new Int32Array(4);
  private readonly slotMask: number;
  private readonly keys: Int32Array;
  private readonly entries: (E | undefined)[];
  /** Expiry per slot in ms since the epoch; Infinity for never. */
  private readonly expiresMs: Float64Array;

  constructor(list: E[]) {
    const { family, prefix } = list[0]!.cidr;
    this.family = family;
    this.prefix = prefix;
    this.masks.fill(-1);
    maskWords(this.masks, family, prefix);
    let capacity = 8;
    while (capacity < list.length * 2) capacity *= 2;
    this.slotMask = capacity - 1;
    this.keys = new Int32Array(capacity * 4);
    this.entries = new Array<E | undefined>(capacity).fill(undefined);
    this.expiresMs = new Float64Array(capacity);
    for (const entry of list) this.insert(entry);
  }

  /** Duplicate networks keep the entry that lives longest, so an expired duplicate cannot hide a live one. */
  private insert(entry: E): void {
    const [w0, w1, w2, w3] = entry.cidr.words as [number, number, number, number];
    const expiresMs = entry.expires?.getTime() ?? Infinity;
    let slot = hash(w0, w1, w2, w3) & this.slotMask;
    while (this.entries[slot] !== undefined && !this.keyEquals(slot, w0, w1, w2, w3)) slot = (slot + 1) & this.slotMask;
    if (this.entries[slot] !== undefined && this.expiresMs[slot]! >= expiresMs) return;
    this.keys.set([w0, w1, w2, w3], slot * 4);
    this.entries[slot] = entry;
    this.expiresMs[slot] = expiresMs;
  }

  find(address: Int32Array, nowMs: number): E | undefined {
    const masks = this.masks;
    const w0 = address[0]! & masks[0]!;
    const w1 = address[1]! & masks[1]!;
    const w2 = address[2]! & masks[2]!;
    const w3 = address[3]! & masks[3]!;
    for (let slot = hash(w0, w1, w2, w3) & this.slotMask; ; slot = (slot + 1) & this.slotMask) {
      const entry = this.entries[slot];
      if (entry === undefined) return undefined;
      if (this.keyEquals(slot, w0, w1, w2, w3)) return this.expiresMs[slot]! > nowMs ? entry : undefined;
    }
  }

  private keyEquals(slot: number, w0: number, w1: number, w2: number, w3: number): boolean {
    const keys = this.keys;
    const base = slot * 4;
    return keys[base] === w0 && keys[base + 1] === w1 && keys[base + 2] === w2 && keys[base + 3] === w3;
  }
}

/** Mixes all four words (murmur3-style) so networks that differ only in high bits still spread out. */
function hash(w0: number, w1: number, w2: number, w3: number): number {
  let h = Math.imul(w0 ^ (w0 >>> 16), 0x85ebca6b) ^ w1;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) ^ w2;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) ^ w3;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}
