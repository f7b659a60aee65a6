import { BlockList, isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { err, ok, type Result } from '../common/result.js';

/** An address as the rendezvous saw it: the agent's public (NAT-mapped) ip and port. */
export interface PublicAddress {
  ip: string;
  port: number;
}

/**
 * The one text form of an IP the rendezvous stores, compares and logs: IPv4-mapped IPv6 (what a dual-stack
 * socket reports for an IPv4 peer) becomes plain IPv4, IPv6 becomes RFC 5952 text, a zone id is dropped.
 * Undefined when the text is not an IP. node:net's isIP is strict (no "127.1", no leading zeros), so
 * ipaddr.js only ever sees well-formed input.
 */
export function normalizeIp(text: string): string | undefined {
  const bare = text.split('%')[0]!;
  if (isIP(bare) === 0) return undefined;
  return ipaddr.process(bare).toString();
}

export function sameAddress(a: PublicAddress | undefined, b: PublicAddress | undefined): boolean {
  return a !== undefined && b !== undefined && a.ip === b.ip && a.port === b.port;
}

/**
 * Parses "203.0.113.0/24", "2001:db8::/32" or a bare address (/32, /128) strictly, returning the canonical
 * text with host bits cleared. The error says what is wrong; the caller prefixes file, key and input.
 */
export function parseCidrText(text: string): Result<string> {
  const [address = '', prefixText, extra] = text.split('/');
  const family = isIP(address);
  if (family === 0 || address.includes('%') || extra !== undefined) {
    return err('is not an IP or CIDR; write e.g. "203.0.113.0/24" or "2001:db8::/32"');
  }
  const maxPrefix = family === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return err(`has a bad prefix "/${prefixText}"; write e.g. "/24"`);
  const prefix = prefixText === undefined ? maxPrefix : Number(prefixText);
  if (prefix > maxPrefix) return err(`has prefix /${prefix}, but an IPv${family} prefix is /0 to /${maxPrefix}`);
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress() && prefix >= 96) {
    // "::ffff:10.0.0.0/104" is how a dual-stack socket would see 10.0.0.0/8; clients are matched as IPv4
    return parseCidrText(`${(parsed as ipaddr.IPv6).toIPv4Address().toString()}/${prefix - 96}`);
  }
  const network = family === 4
    ? ipaddr.IPv4.networkAddressFromCIDR(`${address}/${prefix}`)
    : ipaddr.IPv6.networkAddressFromCIDR(`${address}/${prefix}`);
  return ok(`${network.toString()}/${prefix}`);
}

/**
 * Who may ask for redirects (`redirectAllow`). Empty means everyone. A minimal matcher on node:net's
 * BlockList, which also matches IPv4-mapped IPv6 clients against IPv4 ranges.
 */
export class AddressAllowList {
  private readonly list = new BlockList();
  readonly size: number;

  /** `cidrs` must be canonical (from parseCidrText, as the config loader guarantees). */
  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const [address, prefix] = cidr.split('/') as [string, string];
      this.list.addSubnet(address, Number(prefix), isIP(address) === 4 ? 'ipv4' : 'ipv6');
    }
    this.size = cidrs.length;
  }

  allows(ip: string): boolean {
    if (this.size === 0) return true;
    const family = isIP(ip);
    return family !== 0 && this.list.check(ip, family === 4 ? 'ipv4' : 'ipv6');
  }
}
