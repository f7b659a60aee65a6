import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** A server's IP: the host itself when it is one, else resolved now (a rendezvous's IP may change, so callers resolve at every connect). */
export async function resolveHost({ host }: { host: string }): Promise<string> {
  if (isIP(host) !== 0) return host;
  const { address } = await lookup(host);
  return address;
}
