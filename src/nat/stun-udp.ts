import { createSocket, type Socket } from 'node:dgram';
import type { PublicAddress } from '../common/address.js';
import { retransmitTimes, type RetransmitPolicy } from './retransmit.js';
import { BINDING, decodeStun, encodeStun, newTransactionId, type ChangeRequest, type StunMessage } from './stun-message.js';

/** A Binding response as it arrived: the message, the datagram's real source, and the round trip. */
export interface StunReply {
  message: StunMessage;
  from: PublicAddress;
  rttMs: number;
}

export interface RequestOptions {
  policy: RetransmitPolicy;
  changeRequest?: ChangeRequest;
  /** The id to use, when the caller must know it beforehand (the hairpinning test). */
  transactionId?: Buffer;
  /** Stop retransmitting and resolve undefined. */
  signal?: AbortSignal;
}

/**
 * One local UDP port of a STUN client: Binding requests sent from it with retransmissions, answers matched
 * by transaction id, and Binding requests that arrive at it noticed (a hairpinned request of our own).
 * Anything else that arrives is dropped: a stray or hostile datagram never ends a check.
 */
export class StunUdpSocket {
  private readonly waiting = new Map<string, (reply: StunReply) => void>();
  private readonly expected = new Map<string, () => void>();

  private constructor(private readonly socket: Socket) {
    socket.on('message', (packet, rinfo) => this.receive(packet, { ip: rinfo.address, port: rinfo.port }));
    socket.on('error', () => undefined);
  }

  /** A socket on an ephemeral port of the wildcard address of `family`. */
  static open(family: 4 | 6): Promise<StunUdpSocket> {
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, family === 6 ? '::' : '0.0.0.0', () => {
        socket.off('error', reject);
        resolve(new StunUdpSocket(socket));
      });
    });
  }

  get port(): number {
    return this.socket.address().port;
  }

  /** Sends a Binding request to `to` until it is answered or the policy gives up (undefined). */
  request(to: PublicAddress, options: RequestOptions): Promise<StunReply | undefined> {
    const transactionId = options.transactionId ?? newTransactionId();
    const key = transactionId.toString('hex');
    const packet = encodeStun({ method: BINDING, class: 'request', transactionId, attributes: options.changeRequest ? { changeRequest: options.changeRequest } : {} });
    const { sends, giveUpAt } = retransmitTimes(options.policy);
    const started = performance.now();
    return new Promise((resolve) => {
      const timers = sends.map((at) => setTimeout(() => this.socket.send(packet, to.port, to.ip), at));
      const finish = (reply: StunReply | undefined): void => {
        timers.forEach(clearTimeout);
        clearTimeout(giveUp);
        this.waiting.delete(key);
        options.signal?.removeEventListener('abort', abort);
        resolve(reply);
      };
      const giveUp = setTimeout(() => finish(undefined), giveUpAt);
      const abort = (): void => finish(undefined);
      options.signal?.addEventListener('abort', abort);
      this.waiting.set(key, (reply) => finish({ ...reply, rttMs: performance.now() - started }));
    });
  }

  /** True when a Binding request with this id arrives within `timeoutMs`. */
  expectRequest(transactionId: Buffer, timeoutMs: number): Promise<boolean> {
    const key = transactionId.toString('hex');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.expected.delete(key);
        resolve(false);
      }, timeoutMs);
      this.expected.set(key, () => {
        clearTimeout(timer);
        this.expected.delete(key);
        resolve(true);
      });
    });
  }

  close(): void {
    this.socket.close();
  }

  private receive(packet: Buffer, from: PublicAddress): void {
    const decoded = decodeStun(packet);
    if (!decoded.ok || decoded.value.method !== BINDING) return;
    const message = decoded.value;
    const key = message.transactionId.toString('hex');
    if (message.class === 'request') this.expected.get(key)?.();
    else if (message.class === 'success' || message.class === 'error') this.waiting.get(key)?.({ message, from, rttMs: 0 });
  }
}

