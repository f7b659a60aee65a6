import { createSocket, type Socket as DatagramSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { StunFrameSplitter } from '../../src/nat/stun-frames.js';
import { decodeStun, type StunAddress, type StunMessage } from '../../src/nat/stun-message.js';

/** A test's STUN client: plain dgram and net sockets, as any client on the Internet would use. */

export interface UdpAnswer {
  message: StunMessage;
  /** Where the answer came from (rinfo). */
  from: StunAddress;
}

/** A UDP socket bound to `ip` on a free port. */
export async function udpClient(ip = '127.0.0.1'): Promise<DatagramSocket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, ip, resolve));
  return socket;
}

/** Sends `packet` to `to` and waits for the answer with the same transaction id; undefined when none comes in `timeoutMs`. */
export function udpExchange(socket: DatagramSocket, to: StunAddress, packet: Buffer, timeoutMs = 1_000): Promise<UdpAnswer | undefined> {
  const transactionId = packet.subarray(8, 20);
  return new Promise((resolve) => {
    const done = (answer: UdpAnswer | undefined): void => {
      clearTimeout(timer);
      socket.off('message', onMessage);
      resolve(answer);
    };
    const onMessage = (bytes: Buffer, rinfo: { address: string; port: number }): void => {
      const decoded = decodeStun(bytes);
      if (decoded.ok && decoded.value.transactionId.equals(transactionId)) done({ message: decoded.value, from: { ip: rinfo.address, port: rinfo.port } });
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('message', onMessage);
    socket.send(packet, to.port, to.ip);
  });
}

/** A TCP connection to `to` from `localAddress`. */
export async function tcpClient(to: StunAddress, localAddress = '127.0.0.1'): Promise<Socket> {
  const socket = connect({ host: to.ip, port: to.port, localAddress });
  await once(socket, 'connect');
  return socket;
}

/** Reads `count` STUN messages from `socket`, however the bytes are cut; rejects when the connection ends first. */
export function tcpMessages(socket: Socket, count: number): Promise<StunMessage[]> {
  const splitter = new StunFrameSplitter(65_536);
  const messages: StunMessage[] = [];
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      const frames = splitter.push(chunk);
      if (!frames.ok) return reject(new Error(frames.error));
      for (const frame of frames.value) {
        const decoded = decodeStun(frame);
        if (!decoded.ok) return reject(new Error(decoded.error.message));
        messages.push(decoded.value);
      }
      if (messages.length >= count) {
        socket.off('data', onData);
        socket.off('close', onClose);
        resolve(messages);
      }
    };
    const onClose = (): void => reject(new Error(`the connection closed after ${messages.length} of ${count} messages`));
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
