import type { Socket } from 'node:net';
import { FramedConnection } from '../protocol/channel.js';
import type { Duplex } from 'node:stream';
import { MAX_TEXT_CHARS, type AcmeChallengeMessage, type AcmeChallengeOrder, type AdminOrder, type AuthMessage, type ConnectMessage, type HelloMessage, type Message, type ObservedAddress, type PathName, type WorkAuthMessage, type WorkHelloMessage } from '../protocol/messages.js';
import type { Result } from '../common/result.js';
import { authMac, macEquals, SealedChannelState, sessionKey, welcomeMac, workKey, workMac, type AuthClaims } from '../protocol/session.js';
import { randomNonce } from '../common/nonce.js';
import { normalizeIp } from './addresses.js';
import type { ProbeOutcome } from './registry.js';
import { PendingAdminRequests, type AdminReply } from './remote-admin.js';

/** What a session needs from the server; the server owns the agents, the registry and the logs. */
export interface SessionHost {
  secretOf(agent: string): string | undefined;
  heartbeatMs: number;
  /** The port the rendezvous answers STUN on, told in `welcome`; undefined when STUN is off. */
  readonly stunPort: number | undefined;
  handshakeTimeoutMs: number;
  /** How long an admin request waits for the agent's answer. */
  adminTimeoutMs: number;
  /** The handshake succeeded and the welcome is sent. */
  authenticated(session: ControlSession): void;
  /** A valid sealed ping arrived (the pong is sent already). */
  heartbeat(session: ControlSession): void;
  /** The authenticated agent asks to set or unset an HTTP-01 challenge; the session sends the answer. */
  acmeChallenge(session: ControlSession, order: AcmeChallengeOrder): Result<void>;
  /** The handshake failed (reported at once, before the connection is gone, so a fast retry is counted). */
  handshakeFailed(session: ControlSession, why: string): void;
  /** The connection is gone; `failure` says why when it was not an orderly end. */
  ended(session: ControlSession, failure: string | undefined): void;
  /**
   * The connection became a side connection (a work or punch connection that proved the agent's secret, or
   * a `homeport connect` client's request); the session lets go of it and the host owns the socket.
   */
  detached(session: ControlSession, side: SideConnection): void;
}

/** A connection that left the control protocol after its first exchange. */
export type SideConnection =
  | { kind: 'work'; agent: string; socket: Duplex; observed: ObservedAddress; key: Buffer; punch?: string }
  | { kind: 'connect'; request: ConnectMessage; socket: Duplex; observed: ObservedAddress };

/**
 * An unchanged reachability verdict is sent to the agent again only after this long. Checks run every
 * 30 s: on a rendezvous with thousands of agents, repeating every result would be hundreds of sealed
 * writes a second for no news.
 */
export const PROBE_REPEAT_MS = 5 * 60_000;

/** Words sent to a peer that failed the handshake: the same for every cause, so nothing is learnt from them. */
const AUTH_FAILED = 'authentication failed';

/**
 * One agent connection on the rendezvous: hello → challenge → auth → welcome, then sealed ping/pong,
 * probe results and admin requests, with a handshake deadline and a liveness deadline (no valid frame for
 * 2 heartbeats plus a grace: the agent is dead, or its NAT mapping is, and this connection is a ghost). The
 * server's sweep enforces the deadlines (expireIfDue): one timer for all sessions instead of one re-armed
 * per ping.
 */
export class ControlSession {
  readonly connection: FramedConnection;
  /** The agent's public address as this server sees it: the NAT mapping of the agent's punched port. */
  readonly observed: ObservedAddress;
  /** The server address the agent connected to: the one its whitelist admits for reachability checks. */
  readonly serverIp: string | undefined;
  /** What only the handshake needs; dropped after it (10,000 sessions make every byte count). */
  private handshake: { serverNonce: string; hello?: HelloMessage; workHello?: WorkHelloMessage } | undefined = { serverNonce: randomNonce() };
  private sealed: SealedChannelState | undefined;
  private failure: string | undefined;
  /** The handshake deadline, then the liveness deadline (pushed back by every valid frame), in epoch ms. */
  private deadlineAt: number;
  private registered: { agent: string; claims: AuthClaims } | undefined;
  /** The last reachability verdict sent on this connection, and when. */
  private probeSent: { reachable: boolean; reason: string | undefined; path: PathName; atMs: number } | undefined;
  /** Admin requests waiting for the agent; made on the first one. */
  private admin: PendingAdminRequests | undefined;
  /** Set once the connection left the control protocol. */
  private detachedAs: SideConnection['kind'] | undefined;

  constructor(socket: Socket, observedIp: string, private readonly host: SessionHost) {
    this.observed = { ip: observedIp, port: socket.remotePort ?? 0 };
    this.serverIp = normalizeIp(socket.localAddress ?? '');
    this.connection = new FramedConnection(socket);
    this.connection.on('message', (message) => this.receive(message));
    this.connection.on('protocol-error', (reason) => this.noteFailure(`malformed frame: ${reason}`));
    this.connection.on('close', (cause) => {
      if (this.detachedAs !== undefined) return;
      if (!this.registration) this.noteFailure(`closed during the handshake${cause ? ` (${cause})` : ''}`);
      this.admin?.failAll();
      host.ended(this, this.failure ?? (cause ? `connection lost (${cause})` : undefined));
    });
    this.deadlineAt = Date.now() + host.handshakeTimeoutMs;
  }

  /** The agent's registration, once authenticated: its name and what it registered. */
  get registration(): { readonly agent: string; readonly claims: Readonly<AuthClaims> } | undefined {
    return this.registered;
  }

  get agent(): string | undefined {
    return this.registration?.agent ?? this.handshake?.hello?.agent;
  }

  /** The longest silence tolerated from an authenticated agent. */
  static deadAfterMs(heartbeatMs: number): number {
    return 2 * heartbeatMs + Math.min(heartbeatMs / 2, 2_000);
  }

  /** Ends the session if its deadline has passed; the server calls it for every session now and then. */
  expireIfDue(nowMs: number): void {
    if (nowMs >= this.deadlineAt) this.expire();
  }

  /**
   * Tells the agent a reachability result: the first on this connection, every change of verdict or
   * reason, and an unchanged one after PROBE_REPEAT_MS. False when the session cannot carry it (not
   * authenticated, closed).
   */
  sendProbe(outcome: ProbeOutcome, path: PathName): boolean {
    if (!this.sealed) return false;
    const reason = outcome.reachable ? undefined : outcome.reason;
    const atMs = outcome.checkedAt.getTime();
    const sent = this.probeSent;
    if (sent && sent.reachable === outcome.reachable && sent.reason === reason && sent.path === path && atMs - sent.atMs < PROBE_REPEAT_MS) return true;
    this.probeSent = { reachable: outcome.reachable, reason, path, atMs };
    const message = { type: 'probe', reachable: outcome.reachable, ...(reason === undefined ? {} : { reason }), checkedAt: outcome.checkedAt.toISOString(), path } as const;
    return this.connection.send(this.sealed.seal(message)).ok;
  }

  /** Asks the agent for `count` more work connections; false when this session cannot carry it. */
  sendOpenWork(count: number): boolean {
    return this.sealed !== undefined && this.connection.send(this.sealed.seal({ type: 'openWork', count })).ok;
  }

  /** Asks the agent to punch towards `peer` (a `homeport connect` client); false when this session cannot carry it. */
  sendPunch(id: string, peer: ObservedAddress): boolean {
    return this.sealed !== undefined && this.connection.send(this.sealed.seal({ type: 'punch', id, peer })).ok;
  }

  /** Forwards an admin order to the agent and waits for its answer (503 when this session cannot carry it). */
  requestAdmin(order: Omit<AdminOrder, 'id'>): Promise<AdminReply> {
    const sealed = this.sealed;
    if (!sealed || this.failure !== undefined) {
      return Promise.resolve({ ok: false, status: 503, error: `${this.agent ?? 'the agent'} is not connected to the rendezvous` });
    }
    this.admin ??= new PendingAdminRequests(this.registration!.agent, this.host.adminTimeoutMs);
    return this.admin.request(order, (full) => this.connection.send(sealed.seal({ type: 'admin', ...full })));
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
    const handshake = this.handshake!;
    const first = !handshake.hello && !handshake.workHello;
    if ((message.type === 'hello' || message.type === 'workHello') && first) {
      // Unknown names get a challenge too, and fail at auth with the same words: no probing for names.
      if (message.type === 'hello') handshake.hello = message;
      else handshake.workHello = message;
      this.connection.send({ type: 'challenge', nonce: handshake.serverNonce });
    } else if (message.type === 'connect' && first) {
      this.detach((socket) => ({ kind: 'connect', request: message, socket, observed: this.observed }));
    } else if (message.type === 'workAuth' && handshake.workHello) {
      this.authenticateWork(handshake.serverNonce, handshake.workHello, message);
    } else if (message.type === 'auth' && handshake.hello) {
      this.authenticate(handshake.serverNonce, handshake.hello, message);
    } else if (message.type === 'error') {
      this.close(`the agent gave up: ${message.message}`);
    } else {
      this.refuse(`unexpected "${message.type}" during the handshake`);
    }
  }

  private authenticate(serverNonce: string, hello: HelloMessage, auth: AuthMessage): void {
    const secret = this.host.secretOf(hello.agent);
    if (secret === undefined) return this.refuse(`unknown agent "${hello.agent}"`);
    if (!macEquals(auth.mac, authMac(secret, hello.agent, hello.nonce, serverNonce, auth))) {
      return this.refuse(`bad auth MAC for agent "${hello.agent}" (wrong secret?)`);
    }
    const { heartbeatMs, stunPort } = this.host;
    const claims = { observed: this.observed, heartbeatMs, ...(stunPort !== undefined ? { stunPort } : {}) };
    this.connection.send({ type: 'welcome', mac: welcomeMac(secret, hello.agent, serverNonce, hello.nonce, claims), ...claims, seq: 0 });
    this.sealed = new SealedChannelState(sessionKey(secret, hello.nonce, serverNonce), 'server');
    const { fingerprint, listenPort, publicHost } = auth;
    this.registered = { agent: hello.agent, claims: { fingerprint, listenPort, ...(publicHost !== undefined ? { publicHost } : {}) } };
    this.handshake = undefined;
    this.deadlineAt = Date.now() + ControlSession.deadAfterMs(heartbeatMs);
    this.host.authenticated(this);
  }

  /** A work or punch connection: the same secret, its own MAC; then the socket carries raw bytes. */
  private authenticateWork(serverNonce: string, hello: WorkHelloMessage, auth: WorkAuthMessage): void {
    const secret = this.host.secretOf(hello.agent);
    if (secret === undefined) return this.refuse(`unknown agent "${hello.agent}" on a side connection`);
    if (!macEquals(auth.mac, workMac(secret, hello.agent, hello.nonce, serverNonce, hello.punch))) {
      return this.refuse(`bad work MAC for agent "${hello.agent}" (wrong secret?)`);
    }
    const key = workKey(secret, hello.nonce, serverNonce);
    this.detach((socket) => ({ kind: 'work', agent: hello.agent, socket, observed: this.observed, key, ...(hello.punch ? { punch: hello.punch } : {}) }));
  }

  /** Lets go of the socket, or closes it when the peer sent more than the exchange allows. */
  private detach(make: (socket: Duplex) => SideConnection): void {
    const released = this.connection.detach();
    if (!released.ok) return this.refuse(`side connection: ${released.error}`); // still attached: 'close' ends the session
    const side = make(released.value);
    this.detachedAs = side.kind;
    this.handshake = undefined;
    this.deadlineAt = Infinity;
    this.host.detached(this, side);
  }

  private receiveSealed(sealed: SealedChannelState, message: Message): void {
    const opened = sealed.open(message);
    if (!opened.ok) return this.close(`bad sealed frame: ${opened.error}`);
    this.deadlineAt = Date.now() + ControlSession.deadAfterMs(this.host.heartbeatMs);
    if (opened.value.type === 'ping') {
      this.connection.send(sealed.seal({ type: 'pong', observed: this.observed }));
      this.host.heartbeat(this);
    } else if (opened.value.type === 'adminResult') {
      this.admin?.receive(opened.value);
    } else if (opened.value.type === 'acmeChallenge') {
      this.answerAcmeChallenge(sealed, opened.value);
    } else if (opened.value.type === 'error') {
      this.close(`the agent closed: ${opened.value.message}`);
    }
  }

  /** Answers on this connection, with the same id; a long reason is cut to what the agent's parser takes. */
  private answerAcmeChallenge(sealed: SealedChannelState, { type: _type, seq: _seq, mac: _mac, ...order }: AcmeChallengeMessage): void {
    const result = this.host.acmeChallenge(this, order);
    const answer = result.ok ? { ok: true } : { ok: false, error: result.error.slice(0, MAX_TEXT_CHARS) };
    this.connection.send(sealed.seal({ type: 'acmeChallengeResult', id: order.id, ...answer }));
  }

  /** Handshake failures: one generic error frame, then close. */
  private refuse(why: string): void {
    this.connection.send({ type: 'error', message: AUTH_FAILED });
    this.close(why);
  }

  private expire(): void {
    this.deadlineAt = Infinity; // once is enough: the connection is on its way out
    if (this.registration) {
      this.noteFailure(`no heartbeat for ${ControlSession.deadAfterMs(this.host.heartbeatMs)} ms: expired as a ghost (the agent or its NAT mapping is gone)`);
      // RST, not FIN: a ghost would never acknowledge a FIN, and a live peer reconnects at once either way
      this.connection.reset();
    } else {
      this.refuse(`no complete handshake within ${this.host.handshakeTimeoutMs} ms`);
    }
  }
}
