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
 * Open-addressing hash table of the networks of one family and prefix length, at most half full. A slot is
 * five int32 in one array, [entry index + 1 (0 = empty), w0, w1, w2, w3], so a probe reads adjacent memory
 * and allocates nothing.
 */
class PrefixTable<E extends CidrSetEntry> {
  readonly family: 4 | 6;
  readonly prefix: number;
  private readonly masks = new Int32Array(4);
  private readonly shift: number;
  private readonly slots: Int32Array;
  private readonly entries: E[] = [];
  /** Expiry per entry in ms since the epoch; Infinity for never. */
  private readonly expiresMs: Float64Array;

  constructor(list: E[]) {
    const { family, prefix } = list[0]!.cidr;
    this.family = family;
    this.prefix = prefix;
    this.masks.fill(-1);
    maskWords(this.masks, family, prefix);
    let bits = 3;
    while (1 << bits < list.length * 2) bits++;
    this.shift = 32 - bits;
    this.slots = new Int32Array((1 << bits) * SLOT_SIZE);
    this.expiresMs = new Float64Array(list.length);
    for (const entry of list) this.insert(entry);
  }

  /** Duplicate networks keep the entry that lives longest, so an expired duplicate cannot hide a live one. */
  private insert(entry: E): void {
    const [w0, w1, w2, w3] = entry.cidr.words as [number, number, number, number];
    const expiresMs = entry.expires?.getTime() ?? Infinity;
    const base = this.slotOf(w0, w1, w2, w3);
    const index = this.slots[base]! - 1;
    if (index < 0) {
      this.slots.set([this.entries.length + 1, w0, w1, w2, w3], base);
      this.expiresMs[this.entries.length] = expiresMs;
      this.entries.push(entry);
    } else if (expiresMs > this.expiresMs[index]!) {
      this.entries[index] = entry;
      this.expiresMs[index] = expiresMs;
    }
  }

  find(address: Int32Array, nowMs: number): E | undefined {
    const masks = this.masks;
    const base = this.slotOf(address[0]! & masks[0]!, address[1]! & masks[1]!, address[2]! & masks[2]!, address[3]! & masks[3]!);
    const index = this.slots[base]! - 1;
    return index >= 0 && this.expiresMs[index]! > nowMs ? this.entries[index] : undefined;
  }

  /** The offset of the slot holding this network, or of the empty slot where it would go. */
  private slotOf(w0: number, w1: number, w2: number, w3: number): number {
    const slots = this.slots;
    // Multiplicative (Fibonacci) hashing over all four words; the top bits pick the slot.
    const mixed = w0 ^ Math.imul(w1, 0x85ebca6b) ^ Math.imul(w2, 0xc2b2ae35) ^ Math.imul(w3, 0x27d4eb2f);
    let base = (Math.imul(mixed, 0x9e3779b1) >>> this.shift) * SLOT_SIZE;
    while (slots[base] !== 0) {
      if (slots[base + 1] === w0 && slots[base + 2] === w1 && slots[base + 3] === w2 && slots[base + 4] === w3) break;
      base += SLOT_SIZE;
      if (base === slots.length) base = 0;
    }
    return base;
  }
}

const SLOT_SIZE = 5;
