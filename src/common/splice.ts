import type { Socket } from 'node:net';
import type { ByteRateLimiter } from './rate-limiter.js';

/** How long one side may stay open after the other has closed cleanly. */
const CLOSE_GRACE_MS = 5_000;

export interface SpliceOptions {
  /** No byte either way for this long closes both sockets. */
  idleMs: number;
  /** Shared with the agent's other relayed connections; absent when unlimited. */
  limiter?: ByteRateLimiter;
}

export interface SpliceResult {
  /** Bytes from the user to the agent, and back. */
  up: number;
  down: number;
  /** Why it ended, when not by both sides closing. */
  cause?: string;
}

/**
 * Joins a user's socket and a work connection byte for byte, never looking at them (TLS passes through),
 * with backpressure both ways: a slow reader pauses the other side instead of filling memory. A reset or
 * error on either side, or the idle limit, closes both at once; a clean end (FIN) is passed on, so a
 * finished response reaches the user whole.
 */
export function splice(user: Socket, work: Socket, options: SpliceOptions): Promise<SpliceResult> {
  // what was written before the splice (the PROXY header) is not the user's
  const [workBefore, userBefore] = [work.bytesWritten, user.bytesWritten];
  // a FIN from one side must not end the other direction, whatever the server that accepted the socket chose
  user.allowHalfOpen = true;
  work.allowHalfOpen = true;
  return new Promise((resolve) => {
    let cause: string | undefined;
    let closed = 0;
    const fail = (why: string): void => {
      cause ??= why;
      reset(user);
      reset(work);
    };
    const onClose = (): void => {
      if (++closed === 2) resolve({ up: work.bytesWritten - workBefore, down: user.bytesWritten - userBefore, ...(cause ? { cause } : {}) });
    };
    for (const [socket, other, name] of [[user, work, 'user'], [work, user, 'agent']] as const) {
      socket.on('error', (error: NodeJS.ErrnoException) => fail(`${name}: ${error.code ?? error.message}`));
      socket.once('close', (hadError) => {
        if (hadError) fail(`${name} connection reset`);
        // the FIN is passed on already; a peer that never closes its side is let go after a grace
        else setTimeout(() => other.destroy(), CLOSE_GRACE_MS).unref();
        onClose();
      });
    }
    user.setTimeout(options.idleMs, () => fail(`idle for ${options.idleMs / 1000} s`));
    pump(user, work, options.limiter);
    pump(work, user, options.limiter);
  });
}

/**
 * Closes with RST, dropping what is still queued: a plain close would have the kernel deliver megabytes of
 * a broken response first (a slow phone after a dead agent waited 24 s in the NAT lab to see the end).
 */
export function reset(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy(); // not a TCP handle (a test's duplex): a plain close is all there is
  }
}

/** from → to with backpressure, and pauses the rate limiter asks for; FIN is passed on. */
function pump(from: Socket, to: Socket, limiter: ByteRateLimiter | undefined): void {
  if (!limiter) {
    from.pipe(to);
    return;
  }
  let waiting = 0; // reasons to stay paused: a full socket buffer, a rate pause
  const hold = (): void => {
    if (waiting++ === 0) from.pause();
  };
  const release = (): void => {
    if (--waiting === 0) from.resume();
  };
  from.on('data', (chunk: Buffer) => {
    if (!to.write(chunk)) {
      hold();
      to.once('drain', release);
    }
    const pauseMs = limiter.spend(chunk.length);
    if (pauseMs > 0) {
      hold();
      setTimeout(release, pauseMs).unref();
    }
  });
  from.once('end', () => to.end());
  from.resume();
}
