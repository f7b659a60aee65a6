import type { Socket } from 'node:net';

/** A work connection that proved the agent's secret, waiting to carry one user's connection. */
export interface WorkConnection {
  socket: Socket;
  /** Seals the PROXY header written on it (see protocol/proxy-v2.ts). */
  key: Buffer;
}

export interface WorkPoolOptions {
  /** Idle connections to keep ready. */
  size: number;
  /** Most idle connections held; the agent cannot make the rendezvous hold more sockets than this. */
  maxIdle: number;
  /** Asks the agent (over its control connection) for `count` more; false when it is not connected. */
  request: (count: number) => boolean;
  /** How long a user may wait for a work connection when none is idle. */
  waitMs: number;
}

interface Waiter {
  resolve: (connection: WorkConnection | undefined) => void;
  timer: NodeJS.Timeout;
}

/**
 * One agent's work connections on the rendezvous: idle ones ready to take, and users waiting for one. Taking
 * one asks the agent for a replacement, so the pool refills while the user's bytes flow; a user who finds
 * it empty waits for the next to arrive, at most waitMs.
 */
export class WorkPool {
  /** Idle connections, each with the function that removes the pool's listeners from it. */
  private readonly idle = new Map<WorkConnection, () => void>();
  private readonly waiters: Waiter[] = [];

  constructor(private readonly options: WorkPoolOptions) {}

  get idleCount(): number {
    return this.idle.size;
  }

  /** The agent (re)registered: ask for what the pool lacks. */
  fill(): void {
    const missing = this.options.size - this.idle.size;
    if (missing > 0) this.options.request(missing);
  }

  /** A new authenticated work connection: to a waiting user, or into the pool. */
  add(connection: WorkConnection): void {
    const { socket } = connection;
    socket.setKeepAlive(true, 30_000); // keeps the agent's NAT mapping, and finds a dead agent
    const waiter = this.waiters.shift();
    if (waiter) {
      clearTimeout(waiter.timer);
      waiter.resolve(connection);
      return;
    }
    if (this.idle.size >= this.options.maxIdle) return void socket.destroy();
    const lost = (): void => {
      if (!this.idle.delete(connection)) return;
      socket.destroy();
      if (this.idle.size < this.options.size) this.options.request(1);
    };
    socket.once('close', lost);
    socket.once('data', lost); // an idle work connection must stay silent until its header is written
    socket.on('error', () => undefined);
    socket.resume(); // the handshake left it paused: reading is how a FIN (a dead agent, a lost mapping) is seen
    this.idle.set(connection, () => {
      socket.off('close', lost);
      socket.off('data', lost);
    });
  }

  /** An idle connection, or the next to arrive within waitMs; undefined when none came. */
  take(): Promise<WorkConnection | undefined> {
    for (const [connection, release] of this.idle) {
      this.idle.delete(connection);
      release();
      connection.socket.pause(); // the pool's listener made it flowing: bytes must wait for the taker's reader
      if (connection.socket.destroyed) continue;
      this.options.request(1);
      return Promise.resolve(connection);
    }
    if (!this.options.request(1)) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          resolve(undefined);
        }, this.options.waitMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** The agent went away: its idle connections are closed and its waiting users told there is none. */
  clear(): void {
    for (const connection of this.idle.keys()) connection.socket.destroy();
    this.idle.clear();
    for (const waiter of this.waiters.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.resolve(undefined);
    }
  }
}
