import { err, ok, type Result } from '../common/result.js';

/**
 * Control-protocol framing: a 4-byte big-endian length N, then N bytes of UTF-8 JSON holding one object.
 * Pure: no sockets. The decoder reports errors as values, and once it has failed it stays failed, because
 * after a bad length or a bad body the byte stream can no longer be trusted to be at a frame boundary.
 */

/** Largest body a frame may carry; every control message is far smaller. */
export const MAX_FRAME_BYTES = 16 * 1024;

const HEADER_BYTES = 4;
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** What a decoder holds between frames, shared: one empty Buffer per connection is 10,000 of them on a rendezvous. */
const NOTHING_PENDING: Buffer = Buffer.alloc(0);

/** Frames one message. Throws RangeError past MAX_FRAME_BYTES: validated messages never get there. */
export function encodeFrame(message: object): Buffer {
  const json = JSON.stringify(message);
  const length = Buffer.byteLength(json, 'utf8');
  if (length > MAX_FRAME_BYTES) {
    throw new RangeError(`frame body of ${length} bytes exceeds MAX_FRAME_BYTES (${MAX_FRAME_BYTES})`);
  }
  // one buffer, from Node's pool when small: a rendezvous sends a thousand of these a second
  const frame = Buffer.allocUnsafe(HEADER_BYTES + length);
  frame.writeUInt32BE(length, 0);
  frame.write(json, HEADER_BYTES, 'utf8');
  return frame;
}

/** Turns a JSON text into the one plain object it must hold. */
function decodeFrameBody(body: Uint8Array): Result<object> {
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(body));
  } catch (error) {
    return err(`frame is not UTF-8 JSON: ${(error as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return err(`frame holds ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}, not a JSON object`);
  }
  return ok(value);
}

/** Cuts a byte stream into frame bodies, whatever the chunk boundaries. */
export class FrameDecoder {
  private pending: Buffer = NOTHING_PENDING;
  private failure: string | undefined;

  /**
   * Adds received bytes and returns every object completed by them, in order. Keeps at most one partial
   * frame (header + MAX_FRAME_BYTES) between calls. On the first error it returns that error, now and for
   * every later call.
   */
  push(chunk: Buffer): Result<object[]> {
    if (this.failure !== undefined) return err(this.failure);
    let buffer = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const objects: object[] = [];
    while (buffer.length >= HEADER_BYTES) {
      const length = buffer.readUInt32BE(0);
      if (length === 0 || length > MAX_FRAME_BYTES) {
        return this.fail(`frame length ${length} is outside 1..${MAX_FRAME_BYTES} bytes`);
      }
      if (buffer.length < HEADER_BYTES + length) break;
      const decoded = decodeFrameBody(buffer.subarray(HEADER_BYTES, HEADER_BYTES + length));
      if (!decoded.ok) return this.fail(decoded.error);
      objects.push(decoded.value);
      buffer = buffer.subarray(HEADER_BYTES + length);
    }
    // Copy the remainder so a large chunk is not kept alive by a small leftover slice of it.
    this.pending = buffer.length === 0 ? NOTHING_PENDING : Buffer.from(buffer);
    return ok(objects);
  }

  /** Bytes held back waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.pending.length;
  }

  private fail(reason: string): Result<object[]> {
    this.failure = reason;
    this.pending = NOTHING_PENDING;
    return err(reason);
  }
}
