import type { Socket } from 'node:net';
import type { PublicAddress } from '../common/address.js';
import { connectWithin, shareableBindAddress } from '../common/connect.js';
import { err, ok, type Result } from '../common/result.js';
import { StunFrameSplitter } from './stun-frames.js';
import { BINDING, decodeStun, encodeStun, newTransactionId, type StunMessage } from './stun-message.js';

/** A Binding answer is a few hundred bytes; a server sending more is not one to believe. */
const MAX_ANSWER_BYTES = 2048;

/** A Binding over TCP: the mapped address, and the connection, kept open so the next one from the same port gets its own mapping. */
export interface TcpBinding {
  mapped: PublicAddress;
  localPort: number;
  socket: Socket;
}

/**
 * Connects to `server` from `localPort` (0: any), sends a Binding request and reads the answer (STUN over
 * TCP: messages back to back, RFC 8489 §6.2.2). Errors as values: refused, timed out, closed, or not STUN.
 */
export async function bindingOverTcp(server: PublicAddress, localPort: number, timeoutMs: number): Promise<Result<TcpBinding>> {
  const deadline = Date.now() + timeoutMs;
  const connected = await connectWithin({ host: server.ip, port: server.port, localPort, localAddress: shareableBindAddress(server.ip) }, timeoutMs);
  if (!connected.ok) return connected;
  const socket = connected.value;
  const transactionId = newTransactionId();
  socket.write(encodeStun({ method: BINDING, class: 'request', transactionId, attributes: {} }));
  const answer = await readStunMessage(socket, Math.max(0, deadline - Date.now()));
  const mapped = answer.ok && answer.value.transactionId.equals(transactionId)
    ? answer.value.attributes.xorMappedAddress ?? answer.value.attributes.mappedAddress : undefined;
  if (mapped === undefined) {
    socket.destroy();
    return err(answer.ok ? 'the answer carried no mapped address for our request' : answer.error);
  }
  return ok({ mapped, localPort: socket.localPort!, socket });
}

/** The next STUN message on a TCP stream, within `timeoutMs`. */
function readStunMessage(socket: Socket, timeoutMs: number): Promise<Result<StunMessage>> {
  const splitter = new StunFrameSplitter(MAX_ANSWER_BYTES);
  return new Promise((resolve) => {
    const finish = (result: Result<StunMessage>): void => {
      clearTimeout(timer);
      socket.off('data', onData).off('close', onClose);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      const frames = splitter.push(chunk);
      if (!frames.ok) return finish(err(`the server sent ${frames.error}`));
      const [first] = frames.value;
      if (first === undefined) return;
      const decoded = decodeStun(first);
      finish(decoded.ok ? ok(decoded.value) : err(decoded.error.message));
    };
    const onClose = (): void => finish(err('the server closed the connection without an answer'));
    const timer = setTimeout(() => finish(err(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData).on('close', onClose);
  });
}
