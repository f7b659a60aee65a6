import type { Socket } from 'node:net';
import { connectWithin, shareableBindAddress } from '../common/connect.js';
import { err, type Result } from '../common/result.js';

export interface PunchOptions {
  /** The local port to dial from: the one whose NAT mapping the peer was told. */
  localPort: number;
  peer: { ip: string; port: number };
  /** Give up after this long. */
  timeoutMs: number;
}

/**
 * How long both ends keep dialling: a punch that works does so in well under a second (two SYNs crossing);
 * two attempts of ATTEMPT_MS cover a first SYN lost to a NAT that was not open yet.
 */
export const PUNCH_TIMEOUT_MS = 5_000;
/** One attempt lasts this long: the kernel resends the SYN after 1 s, so two SYNs go out per attempt. */
const ATTEMPT_MS = 2_500;
const RETRY_PAUSE_MS = 200;

/**
 * TCP hole punching by simultaneous open: both ends connect() from the port the other was told, at about
 * the same time. Each SYN opens its own NAT for the other's; once both are open, the SYNs cross and the
 * kernels make one connection of them (RFC 793's simultaneous open). An attempt that meets a closed NAT
 * or a RST is repeated until the deadline.
 */
export async function simultaneousOpen(options: PunchOptions): Promise<Result<Socket>> {
  const deadline = Date.now() + options.timeoutMs;
  let last = 'no attempt made';
  while (Date.now() < deadline) {
    const attempt = await connectOnce(options, Math.min(ATTEMPT_MS, deadline - Date.now()));
    if (attempt.ok) return attempt;
    last = attempt.error;
    await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
  }
  return err(`no connection to ${options.peer.ip}:${options.peer.port} within ${options.timeoutMs} ms (last: ${last})`);
}

function connectOnce(options: PunchOptions, timeoutMs: number): Promise<Result<Socket>> {
  const { peer, localPort } = options;
  return connectWithin({ host: peer.ip, port: peer.port, localPort, localAddress: shareableBindAddress(peer.ip), noDelay: true }, timeoutMs);
}
