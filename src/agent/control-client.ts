import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { backoffDelay } from '../common/backoff.js';
import { normalizeClientAddress } from '../common/cidr.js';
import { err, type Result } from '../common/result.js';
import type { Logger } from '../common/logger.js';
import type { AgentRendezvousConfig } from '../config/agent-types.js';
import { FramedConnection } from '../protocol/channel.js';
import {
  adminResultParts, PROTOCOL_VERSION, type AcmeChallengeOrder, type AcmeChallengeResultMessage, type AdminMessage, type AdminOrder, type Message, type ObservedAddress, type WelcomeMessage,
} from '../protocol/messages.js';
import { authMac, macEquals, SealedChannelState, sessionKey, welcomeMac } from '../protocol/session.js';
import { randomNonce } from '../common/nonce.js';
import type { AdminAnswer } from '../admin/api-types.js';
import type { PunchedPort } from './punch.js';
import type { Reachability } from './public-address.js';
import type { PublicAddress } from '../common/address.js';

const HANDSHAKE_TIMEOUT_MS = 10_000;
const BACKOFF = { baseMs: 1000, capMs: 30_000 };

export interface ControlClientOptions {
  name: string;
  config: AgentRendezvousConfig;
  port: PunchedPort;
  /** SHA-256 of the agent's TLS leaf: the rendezvous checks it when it connects back. */
  fingerprint: () => string;
  /** Carries out an admin order the rendezvous forwards (a whitelist change a user made through it). */
  admin: (order: AdminOrder) => Promise<AdminAnswer>;
  logger: Logger;
  random?: () => number;
}

interface ControlEvents {
  /** `stunPort`: where the rendezvous answers STUN (the address is the rendezvous's own); undefined when it does not. */
  registered: [observed: PublicAddress, stunPort: number | undefined];
  observed: [observed: PublicAddress];
  probe: [result: Reachability];
  disconnected: [reason: string];
  /** The rendezvous asks for `count` more work connections for its relay. */
  openWork: [count: number];
  /** A `homeport connect` client at `peer` wants a punched connection; `id` names it on the side connection. */
  punch: [id: string, peer: ObservedAddress];
  /** The rendezvous's answer to an `acmeChallenge` sent with sendAcmeChallenge. */
  acmeChallengeResult: [result: AcmeChallengeResult];
}

/** An `acmeChallengeResult` without its seal. */
export type AcmeChallengeResult = Omit<AcmeChallengeResultMessage, 'type' | 'seq' | 'mac'>;

/**
 * The agent's side of the control channel: registers with the rendezvous from the punched port, keeps
 * the NAT mapping alive with heartbeats, answers the admin orders the rendezvous forwards, and reconnects
 * — at once after losing a working session, then with exponential backoff and jitter (cap 30 s).
 */
export class ControlClient extends EventEmitter<ControlEvents> {
  private session: Session | undefined;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;
  private serverAddress: string | undefined;

  constructor(private readonly options: ControlClientOptions) {
    super();
  }

  get connected(): boolean {
    return this.session?.ready === true;
  }

  /**
   * The rendezvous's address as the last control connection reached it (DNS names resolved afresh at each
   * connect). Its reachability checks come from this address, so the agent's gate admits it.
   */
  get rendezvousAddress(): string | undefined {
    return this.serverAddress;
  }

  /**
   * Makes the first attempt and resolves when it is done, connected or not (the listener on P is up
   * either way). Rejects only when P itself cannot be listened on: the agent cannot start then.
   */
  async start(): Promise<void> {
    await this.connect(true);
  }

  /** Drops the current session and registers afresh from the punched port (daily job, address check). */
  reregister(reason: string): void {
    this.options.logger.info({ reason }, 're-registering with the rendezvous');
    this.failures = 0;
    if (this.session) this.session.end(`re-register: ${reason}`);
    else this.schedule(0);
  }

  /** Sends an HTTP-01 challenge request on the current session; false when there is none (the answer comes as 'acmeChallengeResult'). */
  sendAcmeChallenge(order: AcmeChallengeOrder): boolean {
    return this.session?.ready === true && this.session.sendAcmeChallenge(order);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    this.session?.end('agent stopping');
  }

  private async connect(first = false): Promise<void> {
    if (this.closed) return;
    let opened: Result<Socket>;
    try {
      opened = await this.options.port.open();
    } catch (error) {
      if (first) throw error;
      opened = err(`cannot listen on the punched port: ${(error as Error).message}`);
    }
    if (!opened.ok) {
      this.failures++;
      this.options.logger.warn({ err: opened.error, attempt: this.failures }, 'cannot reach the rendezvous');
      this.schedule(backoffDelay(this.failures, { ...BACKOFF, random: this.options.random }));
      return;
    }
    if (this.closed) {
      opened.value.resetAndDestroy();
      return;
    }
    this.serverAddress = normalizeClientAddress(opened.value.remoteAddress ?? '');
    this.session = new Session(opened.value, this.options, this);
  }

  /** Called by a session when it ends; a session that had registered is retried at once. */
  onSessionEnd(session: Session, reason: string): void {
    if (this.session !== session) return;
    this.session = undefined;
    this.failures = session.ready ? 0 : this.failures + 1;
    this.emit('disconnected', reason);
    if (!this.closed) this.schedule(backoffDelay(this.failures, { ...BACKOFF, random: this.options.random }));
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.retry);
    this.retry = setTimeout(() => void this.connect(), delayMs);
  }
}

/** One control connection: handshake, then heartbeats until either side stops answering. */
class Session {
  ready = false;
  private readonly connection: FramedConnection;
  private readonly clientNonce = randomNonce();
  private serverNonce = '';
  private sealed: SealedChannelState | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private silenceLimitMs = HANDSHAKE_TIMEOUT_MS;
  private ended = false;

  constructor(socket: Socket, private readonly options: ControlClientOptions, private readonly owner: ControlClient) {
    this.connection = new FramedConnection(socket);
    this.connection.on('message', (message) => this.onMessage(message));
    this.connection.on('protocol-error', (reason) => this.end(`protocol error: ${reason}`));
    this.connection.on('close', () => this.end('connection closed by the rendezvous or the network'));
    this.armDeadline();
    this.connection.send({ type: 'hello', version: PROTOCOL_VERSION, agent: options.name, nonce: this.clientNonce });
  }

  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.deadline);
    // RST, not FIN: the old connection must not sit in TIME_WAIT on P, or the reconnect from P fails
    // with "address in use" (a known NATMap bug)
    this.connection.reset();
    this.options.logger.info({ reason }, 'control connection ended');
    this.owner.onSessionEnd(this, reason);
  }

  /** The rendezvous is declared dead after two heartbeats of silence. */
  private armDeadline(): void {
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => this.end(`rendezvous silent for ${this.silenceLimitMs} ms`), this.silenceLimitMs);
  }

  private onMessage(message: Message): void {
    this.armDeadline();
    if (message.type === 'error') return this.end(`rendezvous refused: ${message.message}`);
    if (!this.sealed) return this.onHandshake(message);
    const opened = this.sealed.open(message);
    if (!opened.ok) return this.end(`bad message from the rendezvous: ${opened.error}`);
    const verified = opened.value;
    if (verified.type === 'pong') this.owner.emit('observed', verified.observed);
    else if (verified.type === 'probe') {
      const { reachable, checkedAt, reason, path } = verified;
      this.owner.emit('probe', { reachable, checkedAt, ...(reason ? { reason } : {}), ...(path ? { path } : {}) });
    } else if (verified.type === 'admin') void this.answerAdmin(verified);
    else if (verified.type === 'openWork') this.owner.emit('openWork', verified.count);
    else if (verified.type === 'punch') this.owner.emit('punch', verified.id, verified.peer);
    else if (verified.type === 'acmeChallengeResult') {
      const { type: _type, seq: _seq, mac: _mac, ...result } = verified;
      this.owner.emit('acmeChallengeResult', result);
    }
  }

  sendAcmeChallenge(order: AcmeChallengeOrder): boolean {
    return this.connection.send(this.sealed!.seal({ type: 'acmeChallenge', ...order })).ok;
  }

  /** Runs the order and sends the answer, in parts, on this same connection (the rendezvous waits on it). */
  private async answerAdmin({ type: _type, seq: _seq, mac: _mac, ...order }: AdminMessage): Promise<void> {
    const answer = await this.options.admin(order).catch((error: unknown): AdminAnswer => {
      this.options.logger.error({ err: String(error), op: order.op }, 'admin order failed');
      return { status: 500, body: JSON.stringify({ error: 'the agent could not carry out the request; see its log' }) };
    });
    if (this.ended) return; // the rendezvous has failed the request already when this connection ended
    for (const part of adminResultParts(order.id, answer.status, answer.body)) this.connection.send(this.sealed!.seal(part));
  }

  private onHandshake(message: Message): void {
    const { name, config } = this.options;
    if (message.type === 'challenge' && !this.serverNonce) {
      this.serverNonce = message.nonce;
      const claims = {
        fingerprint: this.options.fingerprint(),
        listenPort: this.options.port.port,
        ...(config.publicHost ? { publicHost: config.publicHost } : {}),
      };
      this.connection.send({ type: 'auth', mac: authMac(config.secret, name, this.clientNonce, this.serverNonce, claims), ...claims });
      return;
    }
    if (message.type === 'welcome' && this.serverNonce) return this.onWelcome(message);
    this.end(`unexpected ${message.type} during the handshake`);
  }

  private onWelcome(welcome: WelcomeMessage): void {
    const { name, config } = this.options;
    const expected = welcomeMac(config.secret, name, this.serverNonce, this.clientNonce, welcome);
    // a false welcome could hand the agent (and its DDNS hook) an attacker's address, or its NAT checks a false STUN server
    if (!macEquals(expected, welcome.mac)) return this.end('the rendezvous could not prove it knows the secret');
    this.sealed = new SealedChannelState(sessionKey(config.secret, this.clientNonce, this.serverNonce), 'agent');
    const interval = Math.min(config.heartbeatMs, welcome.heartbeatMs);
    this.silenceLimitMs = 2 * interval + 1000;
    this.armDeadline();
    this.heartbeat = setInterval(() => this.connection.send(this.sealed!.seal({ type: 'ping' })), interval);
    this.ready = true;
    this.owner.emit('registered', welcome.observed, welcome.stunPort);
  }
}
