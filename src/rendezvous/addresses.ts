import type { PublicAddress } from '../common/address.js';
import { CidrSet } from '../common/cidr-set.js';
import { normalizeClientAddress, parseAddressInto, parseCidr } from '../common/cidr.js';

/**
 * The one text form of an IP the rendezvous stores, compares and logs: the agent's client-address form
 * (IPv4-mapped IPv6 becomes plain IPv4, IPv6 becomes RFC 5952 text, a zone id is dropped), so both programs
 * read an address alike. Undefined when the text is not an IP; the shared parser is strict (no "127.1", no
 * leading zeros).
 */
export function normalizeIp(text: string): string | undefined {
  return parseAddressInto(text, scratchWords) === 0 ? undefined : normalizeClientAddress(text);
}

const scratchWords = new Int32Array(4);

export function sameAddress(a: PublicAddress | undefined, b: PublicAddress | undefined): boolean {
  return a !== undefined && b !== undefined && a.ip === b.ip && a.port === b.port;
}

/**
 * Who may ask for redirects (`redirectAllow`). Empty means everyone; otherwise the whitelist's own index,
 * which also matches IPv4-mapped IPv6 clients against IPv4 ranges.
 */
export class AddressAllowList {
  private readonly set: CidrSet;

  /** `cidrs` were validated by the config loader; one that does not parse is a bug, so it throws. */
  constructor(cidrs: readonly string[]) {
    this.set = new CidrSet(cidrs.map((text) => {
      const parsed = parseCidr(text);
      if (!parsed.ok) throw new Error(`redirectAllow "${text}" ${parsed.error}`);
      return { cidr: parsed.value };
    }));
  }

  allows(ip: string): boolean {
    return this.set.size === 0 || this.set.match(ip, Date.now()) !== undefined;
  }
}
