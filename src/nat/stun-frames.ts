import { err, ok, type Result } from '../common/result.js';
import { STUN_HEADER_BYTES, stunFrameLength } from './stun-message.js';

/**
 * Cuts a TCP byte stream into STUN messages: over TCP they come back to back, each as long as its header
 * says (RFC 8489 §6.2.2). Holds at most one unfinished message, never more than `maxFrameBytes`.
 */
export class StunFrameSplitter {
  private buffered: Buffer = Buffer.alloc(0);

  constructor(private readonly maxFrameBytes: number) {}

  /** Adds bytes; returns the messages now complete, or why the stream is no STUN (the connection must then end). */
  push(chunk: Buffer): Result<Buffer[]> {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const frames: Buffer[] = [];
    while (this.buffered.length >= STUN_HEADER_BYTES) {
      const length = stunFrameLength(this.buffered.subarray(0, STUN_HEADER_BYTES));
      if (length === undefined) return err('bytes that are no STUN header');
      if (length > this.maxFrameBytes) return err(`a ${length}-byte message, more than the ${this.maxFrameBytes} allowed`);
      if (this.buffered.length < length) break;
      frames.push(this.buffered.subarray(0, length));
      this.buffered = this.buffered.subarray(length);
    }
    return ok(frames);
  }
}
