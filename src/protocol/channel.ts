import { EventEmitter } from 'node:events';
import { connect, Socket } from 'node:net';
import { shareableBindAddress } from '../common/connect.js';
import { resolveHost } from '../common/resolve.js';
import type { Duplex } from 'node:stream';
import { err, ok, type Result } from '../common/result.js';
import { encodeFrame, FrameDecoder } from './framing.js';
import { parseMessage, type Message } from './messages.js';

/**
 * The control protocol over a byte stream: frames out, validated messages in. The only non-pure file of
 * src/protocol/. It never throws on what the peer sends: a bad frame or message emits 'protocol-error'
 * with the reason, then the connection is reset. The handshake and sealing are the caller's, as below.
 *
 * Agent (control client), `socket` connected from the punched port:
 * ```ts
 * const conn = new FramedConnection(socket);
 * const clientNonce = randomNonce();
 * let serverNonce: string | undefined;
 * let sealed: SealedChannelState | undefined;
 * conn.send({ type: 'hello', version: PROTOCOL_VERSION, agent: name, nonce: clientNonce });
 * conn.on('message', (message) => {
 *   if (sealed) {
 *     const opened = sealed.open(message);               // pong | probe | sealed error
 *     if (!opened.ok) return conn.reset();               // log opened.error; reconnect
 *     return handle(opened.value);
 *   }
 *   if (message.type === 'challenge' && serverNonce === undefined) {
 *     serverNonce = message.nonce;
 *     const claims = { fingerprint, listenPort, publicHost };  // publicHost may be undefined
 *     conn.send({ type: 'auth', mac: authMac(secret, name, clientNonce, serverNonce, claims), ...claims });
 *   } else if (message.type === 'welcome' && serverNonce !== undefined &&
 *       macEquals(message.mac, welcomeMac(secret, name, serverNonce, clientNonce, message))) {
 *     sealed = new SealedChannelState(sessionKey(secret, clientNonce, serverNonce), 'agent');
 *     // message.observed is now trustworthy; every heartbeatMs: conn.send(sealed.seal({ type: 'ping' }))
 *   } else {
 *     conn.reset();                                      // unsealed error, forged welcome, or out of order
 *   }
 * });
 * ```
 * Rendezvous (control server), per accepted socket:
 * ```ts
 * const conn = new FramedConnection(socket);
 * const serverNonce = randomNonce();
 * let hello: HelloMessage | undefined;
 * let sealed: SealedChannelState | undefined;
 * conn.on('protocol-error', (reason) => log.warn({ ip: socket.remoteAddress, reason }, 'bad control frame'));
 * conn.on('message', (message) => {
 *   const secret = hello && secretOf(hello.agent);     // undefined for an unknown agent
 *   if (sealed) {
 *     const opened = sealed.open(message);               // ping | sealed error
 *     if (!opened.ok) return conn.close();
 *     if (opened.value.type === 'ping') conn.send(sealed.seal({ type: 'pong', observed }));
 *   } else if (message.type === 'hello' && !hello) {
 *     hello = message;                                   // challenge unknown names too: no name probing
 *     conn.send({ type: 'challenge', nonce: serverNonce });
 *   } else if (message.type === 'auth' && hello && secret !== undefined &&
 *       macEquals(message.mac, authMac(secret, hello.agent, hello.nonce, serverNonce, message))) {
 *     const claims = { observed, heartbeatMs, stunPort };    // stunPort undefined when STUN is off
 *     conn.send({ type: 'welcome', mac: welcomeMac(secret, hello.agent, serverNonce, hello.nonce, claims), ...claims, seq: 0 });
 *     sealed = new SealedChannelState(sessionKey(secret, hello.nonce, serverNonce), 'server');
 *   } else {
 *     conn.send({ type: 'error', message: 'authentication failed' });  // same words for unknown agent
 *     conn.close();                                      // the server closes first: no TIME_WAIT at the agent
 *   }
 * });
 * ```
 * Timers are the caller's too: a handshake deadline, and "no message for 2 × heartbeat + grace" after it.
 */

export interface FramedConnectionEvents {
  /** A well-formed message; sealed ones still need `SealedChannelState.open`. */
  message: [message: Message];
  /** The peer sent a bad frame or message; the connection is being reset. */
  'protocol-error': [reason: string];
  /** The socket closed; `cause` is the protocol error or socket error behind it, if any. */
  close: [cause: string | undefined];
}

/** How long `close()` waits for the peer's FIN before letting go of the socket anyway. */
const CLOSE_GRACE_MS = 2_000;

export class FramedConnection extends EventEmitter<FramedConnectionEvents> {
  private readonly decoder = new FrameDecoder();
  /** Set once we close or reset: later input is dropped, later sends refused. */
  private finished = false;
  private cause: string | undefined;

  private readonly onData = (chunk: Buffer): void => this.receive(chunk);
  private readonly onError = (error: Error): void => {
    this.cause ??= error.message;
  };
  private readonly onClose = (): void => {
    this.emit('close', this.cause);
  };

  constructor(readonly socket: Duplex) {
    super();
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.once('close', this.onClose);
  }

  /**
   * Hands the socket over to raw bytes (a work connection after its handshake): no more frames are read or
   * sent, and no 'close' is emitted. Fails, and stays attached, when bytes past the last frame are already
   * buffered: the peer sent more than the handshake allows. The new owner must listen for 'error' itself.
   */
  detach(): Result<Duplex> {
    if (this.finished) return err('the connection is closed');
    if (this.decoder.bufferedBytes > 0) return err(`${this.decoder.bufferedBytes} bytes arrived after the handshake's last frame`);
    this.finished = true;
    this.socket.pause(); // a flowing stream without a 'data' listener would drop what arrives next
    this.socket.off('data', this.onData);
    this.socket.off('close', this.onClose);
    this.socket.off('error', this.onError);
    return ok(this.socket);
  }

  /**
   * A connection to a control port, for a side connection or a `homeport connect` request (the agent's own
   * control connection comes from its punched port). `shareable`: bound so that a punching socket may use
   * the same local port (see shareableBindAddress).
   */
  static async dial(server: { host: string; port: number }, { shareable = false } = {}): Promise<FramedConnection> {
    const host = await resolveHost(server);
    return new FramedConnection(connect({ host, port: server.port, noDelay: true, ...(shareable ? { localAddress: shareableBindAddress(host) } : {}) }));
  }

  /**
   * The next message, or why none came (the connection closed, or timeoutMs passed). For exchanges where
   * the peer sends one message and waits: a second message in the same chunk would find no listener.
   */
  nextMessage(timeoutMs: number): Promise<Result<Message>> {
    return new Promise((resolve) => {
      const settle = (result: Result<Message>): void => {
        clearTimeout(timer);
        this.off('message', onMessage);
        this.off('close', onClose);
        resolve(result);
      };
      const onMessage = (message: Message): void => settle(ok(message));
      const onClose = (cause: string | undefined): void => settle(err(`the connection closed${cause ? ` (${cause})` : ''}`));
      const timer = setTimeout(() => settle(err(`no answer within ${timeoutMs} ms`)), timeoutMs);
      this.on('message', onMessage);
      this.on('close', onClose);
    });
  }

  /** Validates and writes one message; refuses (without throwing) when closed or invalid. */
  send(message: Message): Result<void> {
    if (this.finished || this.socket.destroyed || !this.socket.writable) return err('the control connection is closed');
    const valid = parseMessage(message);
    if (!valid.ok) return err(`refusing to send an invalid message: ${valid.error}`);
    this.socket.write(encodeFrame(valid.value));
    return ok(undefined);
  }

  /** Flushes what was sent, then closes with FIN: the side that calls this first holds the TIME_WAIT. */
  close(): void {
    if (this.finished) return;
    this.finished = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Drops the connection with RST, leaving no TIME_WAIT, so the agent can reconnect from the same port. */
  reset(): void {
    this.finished = true;
    if (this.socket.destroyed) return;
    try {
      if (this.socket instanceof Socket) this.socket.resetAndDestroy();
      else this.socket.destroy();
    } catch {
      this.socket.destroy(); // resetAndDestroy refuses non-TCP handles such as Unix sockets
    }
  }

  private receive(chunk: Buffer): void {
    if (this.finished) return;
    const frames = this.decoder.push(chunk);
    if (!frames.ok) return this.fail(frames.error);
    for (const frame of frames.value) {
      if (this.finished) return; // a 'message' listener closed the connection
      const message = parseMessage(frame);
      if (!message.ok) return this.fail(message.error);
      this.emit('message', message.value);
    }
  }

  private fail(reason: string): void {
    this.cause = reason;
    this.emit('protocol-error', reason);
    this.reset();
  }
}
