import type { AcmeChallengeOrder } from '../protocol/messages.js';
import type { Http01Responder } from '../tls/acme/http01.js';
import type { AcmeChallengeResult } from './control-client.js';

/** How long the rendezvous has to answer one request: it only stores the entry, so this is generous. */
export const ACME_REQUEST_TIMEOUT_MS = 10_000;
/**
 * How long a challenge waits for the control connection. The certificate source starts issuing before
 * the agent has registered, and a reconnect takes a few seconds at most.
 */
export const ACME_CONNECT_WAIT_MS = 30_000;

/** What the responder needs of the control client. */
export interface AcmeChannel {
  readonly connected: boolean;
  /** Sends the order sealed on the current connection; false when there is none. */
  sendAcmeChallenge(order: AcmeChallengeOrder): boolean;
}

export interface RendezvousHttp01ResponderOptions {
  timeoutMs?: number;
  connectWaitMs?: number;
}

interface Pending {
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * HTTP-01 through the rendezvous: the key authorization goes to the rendezvous over the control channel,
 * and the rendezvous serves it on its acmeHttp port, where the CA asks when the name points at it. The
 * owner feeds in the connection's events: connected(), receive() and disconnected().
 */
export class RendezvousHttp01Responder implements Http01Responder {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Requests waiting for the control connection. */
  private readonly waiting = new Set<() => void>();
  private readonly timeoutMs: number;
  private readonly connectWaitMs: number;

  constructor(private readonly channel: AcmeChannel, options: RendezvousHttp01ResponderOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? ACME_REQUEST_TIMEOUT_MS;
    this.connectWaitMs = options.connectWaitMs ?? ACME_CONNECT_WAIT_MS;
  }

  set(hostname: string, token: string, keyAuthorization: string): Promise<void> {
    return this.request({ op: 'set', hostname: hostname.toLowerCase(), token, keyAuthorization });
  }

  unset(hostname: string, token: string): Promise<void> {
    return this.request({ op: 'unset', hostname: hostname.toLowerCase(), token });
  }

  /** The control connection is registered (again): waiting requests go out now. */
  connected(): void {
    for (const wake of this.waiting) wake();
    this.waiting.clear();
  }

  /** The rendezvous's answer; one for no request still waiting (it timed out) is dropped. */
  receive(result: AcmeChallengeResult): void {
    this.settle(result.id, result.ok ? undefined : new Error(`refused by the rendezvous: ${result.error ?? 'no reason given'}`));
  }

  /** The control connection ended: nothing it carried will be answered. */
  disconnected(reason: string): void {
    for (const id of [...this.pending.keys()]) this.settle(id, new Error(`the connection to the rendezvous ended before it answered (${reason})`));
  }

  private async request(order: Omit<AcmeChallengeOrder, 'id'>): Promise<void> {
    await this.untilConnected();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.settle(id, new Error(`the rendezvous did not answer within ${this.timeoutMs / 1000} s`)), this.timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      if (!this.channel.sendAcmeChallenge({ id, ...order })) this.settle(id, new Error('not connected to the rendezvous'));
    });
  }

  private untilConnected(): Promise<void> {
    if (this.channel.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiting.delete(wake);
        reject(new Error(`not connected to the rendezvous (waited ${this.connectWaitMs / 1000} s), so the challenge cannot be handed to it`));
      }, this.connectWaitMs);
      timer.unref();
      this.waiting.add(wake);
    });
  }

  private settle(id: number, failure: Error | undefined): void {
    const waiting = this.pending.get(id);
    if (!waiting) return;
    this.pending.delete(id);
    clearTimeout(waiting.timer);
    if (failure) waiting.reject(failure);
    else waiting.resolve();
  }
}

/**
 * An Http01Responder to hand out before the real one exists: the agent opens its certificate source (which
 * may start issuing at once) before the rendezvous link is up. Calls wait until bind().
 */
export function lateBoundHttp01(): { responder: Http01Responder; bind(target: Http01Responder): void } {
  let bind!: (target: Http01Responder) => void;
  const target = new Promise<Http01Responder>((resolve) => {
    bind = resolve;
  });
  return {
    responder: {
      set: async (hostname, token, keyAuthorization) => (await target).set(hostname, token, keyAuthorization),
      unset: async (hostname, token) => (await target).unset(hostname, token),
    },
    bind,
  };
}
