import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

/** Just enough WebSocket (RFC 6455) for tests: one frame each way, no extensions, payloads under 126 bytes. */

export const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** One WebSocket frame: FIN + text opcode, payload < 126 bytes, masked as a client must. */
export function encodeFrame(payload: Buffer, mask: boolean): Buffer {
  const header = Buffer.from([0x81, payload.length | (mask ? 0x80 : 0)]);
  if (!mask) return Buffer.concat([header, payload]);
  const key = randomBytes(4);
  return Buffer.concat([header, key, payload.map((byte, i) => byte ^ key[i % 4]!)]);
}

/** Reads one small frame from a socket (starting with bytes already read) and unmasks it. */
export function readFrame(socket: Duplex, initial: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buffered = initial;
    const tryParse = (): void => {
      if (buffered.length < 2) return;
      const masked = (buffered[1]! & 0x80) !== 0;
      const length = buffered[1]! & 0x7f;
      const headerLength = 2 + (masked ? 4 : 0);
      if (buffered.length < headerLength + length) return;
      socket.off('data', onData);
      const payload = buffered.subarray(headerLength, headerLength + length);
      const key = buffered.subarray(2, 6);
      resolve(masked ? Buffer.from(payload.map((byte, i) => byte ^ key[i % 4]!)) : Buffer.from(payload));
    };
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      tryParse();
    };
    socket.on('data', onData);
    socket.once('error', reject);
    tryParse();
  });
}

export function echoWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}${WS_GUID}`).digest('base64');
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      `Sec-WebSocket-Accept: ${accept}\r\nX-Seen-Forwarded-For: ${req.headers['x-forwarded-for']}\r\n\r\n`,
  );
  void readFrame(socket, head).then((payload) => socket.end(encodeFrame(Buffer.concat([Buffer.from('echo: '), payload]), false)));
}
