import type { Socket } from 'node:net';
import { FramedConnection } from '../protocol/channel.js';
import type { AuthMessage, HelloMessage, Message, ObservedAddress } from '../protocol/messages.js';
import { authMac, macEquals, newNonce, SealedChannelState, sessionKey, welcomeMac } from '../protocol/session.js';
import { normalizeIp } from './addresses.js';
import type { ProbeOutcome } from './registry.js';

/** What a session needs from the server; the server owns the agents, the registry and the logs. */
export interface SessionHost {
  secretOf(agent: string): string | undefined;
  heartbeatMs: number;
  handshakeTimeoutMs: number;
  /** The handshake succeeded and the welcome is sent. */
  authenticated(session: ControlSession): void;
  /** A valid sealed ping arrived (the pong is sent already). */
  heartbeat(session: ControlSession): void;
  /** The handshake failed (reported at once, before the connection is gone, so a fast retry is counted). */
  handshakeFailed(session: ControlSession, why: string): void;
  /** The connection is gone; `failure` says why when it was not an orderly end. */
  ended(session: ControlSession, failure: string | undefined): void;
}

/** Words sent to a peer that failed the handshake: the same for every cause, so nothing is learnt from them. */
const AUTH_FAILED = 'authentication failed';

/**
 * One agent connection on the rendezvous: hello → challenge → auth → welcome, then sealed ping/pong and
 * probe results, with a handshake deadline and a liveness deadline (no valid frame for 2 heartbeats plus
 * a grace: the agent is dead, or its NAT mapping is, and this connection is a ghost).
 */
export class ControlSession {
  readonly connection: FramedConnection;
  /** The agent's public address as this server sees it: the NAT mapping of the agent's punched port. */
  readonly observed: ObservedAddress;
  /** The server address the agent connected to: the one its whitelist admits for reachability checks. */
  readonly serverIp: string | undefined;
  private readonly serverNonce = newNonce();
  private hello: HelloMessage | undefined;
  private sealed: SealedChannelState | undefined;
  private failure: string | undefined;
  /** The handshake deadline, then the liveness deadline (refreshed by every valid frame). */
  private deadline: NodeJS.Timeout;
  private registered: { agent: string; auth: AuthMessage } | undefined;

  constructor(socket: Socket, observedIp: string, private readonly host: SessionHost) {
    this.observed = { ip: observedIp, port: socket.remotePort ?? 0 };
    this.serverIp = normalizeIp(socket.localAddress ?? '');
    this.connection = new FramedConnection(socket);
    this.connection.on('message', (message) => this.receive(message));
    this.connection.on('protocol-error', (reason) => this.noteFailure(`malformed frame: ${reason}`));
    this.connection.on('close', (cause) => {
      clearTimeout(this.deadline);
      if (!this.registration) this.noteFailure(`closed during the handshake${cause ? ` (${cause})` : ''}`);
      host.ended(this, this.failure ?? (cause ? `connection lost (${cause})` : undefined));
    });
    this.deadline = setTimeout(() => this.expire(), host.handshakeTimeoutMs);
  }

  /** The agent's registration, once authenticated. */
  get registration(): { readonly agent: string; readonly auth: AuthMessage } | undefined {
    return this.registered;
  }

  get agent(): string | undefined {
    return this.registration?.agent ?? this.hello?.agent;
  }

  /** The longest silence tolerated from an authenticated agent. */
  static deadAfterMs(heartbeatMs: number): number {
    return 2 * heartbeatMs + Math.min(heartbeatMs / 2, 2_000);
  }

  /** Sends a reachability result; false when the session cannot carry it (not authenticated, closed). */
  sendProbe(outcome: ProbeOutcome): boolean {
    if (!this.sealed) return false;
    const reason = outcome.reachable || outcome.reason === undefined ? {} : { reason: outcome.reason };
    return this.connection.send(this.sealed.seal({ type: 'probe', reachable: outcome.reachable, ...reason, checkedAt: outcome.checkedAt.toISOString() })).ok;
  }

  /** Ends the session from our side with FIN (we close first, so the agent's punched port has no TIME_WAIT). */
  close(why: string): void {
    this.noteFailure(why);
    this.connection.close();
  }

  /** Keeps the first reason the session is ending for; a handshake failure is reported at once. */
  private noteFailure(why: string): void {
    if (this.failure !== undefined) return;
    this.failure = why;
    if (!this.registration) this.host.handshakeFailed(this, why);
  }

  private receive(message: Message): void {
    if (this.sealed) return this.receiveSealed(this.sealed, message);
    if (message.type === 'hello' && !this.hello) {
      // Unknown names get a challenge too, and fail at auth with the same words: no probing for names.
      this.hello = message;
      this.connection.send({ type: 'challenge', nonce: this.serverNonce });
    } else if (message.type === 'auth' && this.hello) {
      this.authenticate(this.hello, message);
    } else if (message.type === 'error') {
      this.close(`the agent gave up: ${message.message}`);
    } else {
      this.refuse(`unexpected "${message.type}" during the handshake`);
    }
  }

  private authenticate(hello: HelloMessage, auth: AuthMessage): void {
    const secret = this.host.secretOf(hello.agent);
    if (secret === undefined) return this.refuse(`unknown agent "${hello.agent}"`);
    if (!macEquals(auth.mac, authMac(secret, hello.agent, hello.nonce, this.serverNonce, auth))) {
      return this.refuse(`bad auth MAC for agent "${hello.agent}" (wrong secret?)`);
    }
    const { heartbeatMs } = this.host;
    const mac = welcomeMac(secret, hello.agent, this.serverNonce, hello.nonce, this.observed, heartbeatMs);
    this.connection.send({ type: 'welcome', mac, observed: this.observed, heartbeatMs, seq: 0 });
    this.sealed = new SealedChannelState(sessionKey(secret, hello.nonce, this.serverNonce), 'server');
    this.registered = { agent: hello.agent, auth };
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.expire(), ControlSession.deadAfterMs(heartbeatMs));
    this.host.authenticated(this);
  }

  private receiveSealed(sealed: SealedChannelState, message: Message): void {
    const opened = sealed.open(message);
    if (!opened.ok) return this.close(`bad sealed frame: ${opened.error}`);
    this.deadline.refresh();
    if (opened.value.type === 'ping') {
      this.connection.send(sealed.seal({ type: 'pong', observed: this.observed }));
      this.host.heartbeat(this);
    } else if (opened.value.type === 'error') {
      this.close(`the agent closed: ${opened.value.message}`);
    }
  }

  /** Handshake failures: one generic error frame, then close. */
  private refuse(why: string): void {
    this.connection.send({ type: 'error', message: AUTH_FAILED });
    this.close(why);
  }

  private expire(): void {
    if (this.registration) {
      this.noteFailure(`no heartbeat for ${ControlSession.deadAfterMs(this.host.heartbeatMs)} ms: expired as a ghost (the agent or its NAT mapping is gone)`);
      // RST, not FIN: a ghost would never acknowledge a FIN, and a live peer reconnects at once either way
      this.connection.reset();
    } else {
      this.refuse(`no complete handshake within ${this.host.handshakeTimeoutMs} ms`);
    }
  }
}
