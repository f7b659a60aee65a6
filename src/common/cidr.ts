import { err, ok, type Result } from './result.js';

/**
 * Strict IP and CIDR parsing for the whitelist. One hand-written parser serves both the config (where it
 * explains what is wrong) and the per-connection lookup (where it must not allocate), so the two can never
 * disagree about what an address is. ipaddr.js is deliberately not used here: it accepts `127.1`,
 * `0x7f.0.0.1` and reads `010.0.0.1` as 8.0.0.1, and a whitelist must mean exactly what the user sees.
 */
export interface Cidr {
  family: 4 | 6;
  prefix: number;
  /** Canonical form with host bits zeroed: "192.168.1.0/24", "2001:db8::/32", "1.2.3.4/32". */
  text: string;
  /**
   * The network as four 32-bit words (int32), most significant first, host bits zero.
   * IPv4 uses words[0] only; the other three are 0.
   */
  words: readonly number[];
}

const EXAMPLE = 'write e.g. "192.168.1.0/24" or "2001:db8::/32"';
const NOT_AN_ADDRESS = `is not an IP or CIDR; ${EXAMPLE}`;

const DOT = 46;
const COLON = 58;
const ZERO = 48;
const NINE = 57;

/**
 * Parses a strict dotted quad between start and end: four decimal octets 0-255 without leading zeros.
 * Returns the address as an unsigned 32-bit number, or -1.
 */
export function parseIpv4(text: string, start = 0, end = text.length): number {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === DOT) {
      if (digits === 0 || dots === 3) return -1;
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else if (c >= ZERO && c <= NINE) {
      if (digits === 1 && octet === 0) return -1; // leading zero: octal to some parsers
      octet = octet * 10 + (c - ZERO);
      if (octet > 255) return -1;
      digits++;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || digits === 0) return -1;
  return value * 256 + octet;
}

function hexDigit(c: number): number {
  if (c >= ZERO && c <= NINE) return c - ZERO;
  const lower = c | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

/** A zone id (interface name or index) after "%", up to the end of the text. */
const ZONE_ID = /[\w.~-]+$/y;

/** The 16-bit groups of the last IPv6 address parsed; reused so a lookup does not allocate. */
const groups = new Uint16Array(8);

/** Parses IPv6 text without zone id into `groups`; an IPv4 tail ("::ffff:1.2.3.4") fills the last two. */
function parseIpv6Groups(text: string, start: number, end: number): boolean {
  let count = 0;
  let gap = -1; // index in `groups` where "::" stands
  let i = start;
  if (text.charCodeAt(i) === COLON) {
    if (text.charCodeAt(i + 1) !== COLON) return false;
    gap = 0;
    i += 2;
  }
  while (i < end) {
    if (count === 8) return false;
    const groupStart = i;
    let value = 0;
    while (i < end) {
      const digit = hexDigit(text.charCodeAt(i));
      if (digit < 0) break;
      value = (value << 4) | digit;
      if (++i - groupStart > 4) return false;
    }
    if (i < end && text.charCodeAt(i) === DOT) {
      const ipv4 = count <= 6 ? parseIpv4(text, groupStart, end) : -1;
      if (ipv4 < 0) return false;
      groups[count++] = ipv4 >>> 16;
      groups[count++] = ipv4 & 0xffff;
      break;
    }
    if (i === groupStart) return false;
    groups[count++] = value;
    if (i === end) break;
    if (text.charCodeAt(i) !== COLON || ++i === end) return false;
    if (text.charCodeAt(i) === COLON) {
      if (gap >= 0) return false;
      gap = count;
      i++;
    }
  }
  if (gap < 0) return count === 8;
  if (count === 8) return false; // "::" stands for at least one zero group
  const tail = count - gap;
  groups.copyWithin(8 - tail, gap, count);
  groups.fill(0, gap, 8 - tail);
  return true;
}

/**
 * Parses a bare address into `words` (four int32, most significant first). IPv4-mapped IPv6
 * ("::ffff:1.2.3.4") is returned as IPv4 when `mappedAsIpv4`; a zone id ("fe80::1%eth0") is ignored.
 * Returns 4, 6, or 0 when the text is not an address. Allocation-free: used on every accepted connection.
 */
export function parseAddressInto(text: string, words: Int32Array, mappedAsIpv4 = true): 0 | 4 | 6 {
  const ipv4 = parseIpv4(text);
  if (ipv4 >= 0) {
    words[0] = ipv4 | 0;
    words[1] = words[2] = words[3] = 0;
    return 4;
  }
  let end = text.indexOf('%');
  if (end < 0) {
    end = text.length;
  } else {
    ZONE_ID.lastIndex = end + 1;
    if (!ZONE_ID.test(text)) return 0;
  }
  if (end < 2 || !parseIpv6Groups(text, 0, end)) return 0;
  for (let word = 0; word < 4; word++) words[word] = (groups[word * 2]! << 16) | groups[word * 2 + 1]!;
  if (mappedAsIpv4 && isMappedIpv4(words)) {
    unmapIpv4(words);
    return 4;
  }
  return 6;
}

/** Whether IPv6 words lie in ::ffff:0:0/96, the IPv4-mapped range a dual-stack socket reports. */
function isMappedIpv4(words: Int32Array): boolean {
  return words[0] === 0 && words[1] === 0 && words[2] === 0xffff;
}

/** Turns the words of ::ffff:a.b.c.d into those of a.b.c.d. */
function unmapIpv4(words: Int32Array): void {
  words[0] = words[3]!;
  words[1] = words[2] = words[3] = 0;
}

/** Zeroes every bit of `words` past `prefix` (counted over 32 bits for IPv4, 128 for IPv6). */
export function maskWords(words: Int32Array, family: 4 | 6, prefix: number): void {
  const total = family === 4 ? 1 : 4;
  for (let word = 0; word < 4; word++) {
    const bits = word < total ? Math.min(32, Math.max(0, prefix - word * 32)) : 0;
    words[word] = bits === 0 ? 0 : words[word]! & (-1 << (32 - bits));
  }
}

/**
 * Parses a whitelist entry: an IPv4 or IPv6 address or CIDR. A bare address is /32 or /128; host bits are
 * cleared; a zone id is dropped; an IPv4-mapped IPv6 range of /96 or longer becomes the IPv4 range it maps.
 * The error says what is wrong and how to write it; the caller prefixes the file, key and input.
 */
export function parseCidr(input: string): Result<Cidr> {
  if (input.length === 0) return err(`is empty; ${EXAMPLE}`);
  const slash = input.indexOf('/');
  const addressText = slash < 0 ? input : input.slice(0, slash);
  const words = new Int32Array(4);
  const rawFamily = parseAddressInto(addressText, words, false);
  if (rawFamily === 0) return err(describeAddressProblem(addressText));
  const mapped = rawFamily === 6 && isMappedIpv4(words);
  const maxPrefix = rawFamily === 4 ? 32 : 128;
  let prefix = maxPrefix;
  if (slash >= 0) {
    const prefixText = input.slice(slash + 1);
    if (!/^\d{1,3}$/.test(prefixText)) return err(`has a bad prefix "/${prefixText}"; write a number after the slash, e.g. "/24"`);
    prefix = Number(prefixText);
    if (prefix > maxPrefix) return err(`has prefix /${prefix}, but an IPv${rawFamily} prefix is /0 to /${maxPrefix}`);
  }
  if (mapped && prefix >= 96) {
    unmapIpv4(words);
    return ok(makeCidr(words, 4, prefix - 96));
  }
  return ok(makeCidr(words, rawFamily, prefix));
}

function makeCidr(words: Int32Array, family: 4 | 6, prefix: number): Cidr {
  maskWords(words, family, prefix);
  return { family, prefix, text: `${formatAddress(words, family)}/${prefix}`, words: Array.from(words) };
}

/**
 * The form a client address is looked up, logged and rate-limited under: "1.2.3.4" for IPv4 and for
 * IPv4-mapped IPv6 (a dual-stack socket reports "::ffff:1.2.3.4"), RFC 5952 text without zone id for IPv6.
 * Text that is not an address comes back unchanged; the gate denies it.
 */
export function normalizeClientAddress(address: string): string {
  const family = parseAddressInto(address, scratchWords);
  return family === 0 ? address : formatAddress(scratchWords, family);
}

const scratchWords = new Int32Array(4);

function formatAddress(words: Int32Array, family: 4 | 6): string {
  if (family === 4) {
    const value = words[0]!;
    return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
  }
  const parts: number[] = [];
  for (const word of words) parts.push(word >>> 16, word & 0xffff);
  return formatIpv6(parts);
}

/** RFC 5952: lower-case hex without leading zeros, the first longest run of two or more zero groups as "::". */
function formatIpv6(parts: number[]): string {
  let bestStart = -1;
  let bestLength = 1;
  for (let start = 0; start < 8; start++) {
    let length = 0;
    while (start + length < 8 && parts[start + length] === 0) length++;
    if (length > bestLength) {
      bestStart = start;
      bestLength = length;
    }
  }
  const hex = parts.map((part) => part.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

/** Explains why text that failed to parse is not an address, naming the lax forms other parsers accept. */
function describeAddressProblem(text: string): string {
  if (/\s/.test(text)) return `contains whitespace; ${EXAMPLE}`;
  // An IPv4 address alone or as the tail of an IPv6 one ("::ffff:010.0.0.1").
  const ipv4Text = text.slice(text.lastIndexOf(':') + 1);
  if (!ipv4Text.includes('.') || !/^[0-9a-fA-FxX.]+$/.test(ipv4Text)) return NOT_AN_ADDRESS;
  const octets = ipv4Text.split('.');
  const hex = octets.find((octet) => /^0x/i.test(octet));
  if (hex !== undefined) return `is not an IP or CIDR: "${hex}" is hexadecimal; write each IPv4 octet in decimal, e.g. "127.0.0.1"`;
  if (octets.some((octet) => !/^\d+$/.test(octet))) return NOT_AN_ADDRESS;
  if (octets.length !== 4) {
    return `is not an IP or CIDR: ${octets.length} parts where IPv4 has 4; write all four octets, e.g. "127.0.0.1"`;
  }
  const padded = octets.find((octet) => /^0\d/.test(octet));
  if (padded !== undefined) {
    return `is not an IP or CIDR: octet "${padded}" has a leading zero, which some tools read as octal; write octets without leading zeros`;
  }
  const tooLarge = octets.find((octet) => Number(octet) > 255);
  if (tooLarge !== undefined) return `is not an IP or CIDR: octet ${tooLarge} is over 255; ${EXAMPLE}`;
  return NOT_AN_ADDRESS;
}
