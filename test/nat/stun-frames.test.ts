import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StunFrameSplitter } from '../../src/nat/stun-frames.js';
import { bindingBytes } from '../helpers/stun-bytes.js';

test('back-to-back messages come out whole, however the stream is cut', () => {
  const messages = [bindingBytes(), bindingBytes({ software: 'a longer one' }), bindingBytes()];
  const stream = Buffer.concat(messages);
  for (const cut of [1, 3, 19, 20, 21, 40, stream.length]) {
    const splitter = new StunFrameSplitter(1024);
    const out: Buffer[] = [];
    for (let at = 0; at < stream.length; at += cut) {
      const frames = splitter.push(stream.subarray(at, at + cut));
      assert.ok(frames.ok, `cut ${cut}`);
      out.push(...frames.value);
    }
    assert.deepEqual(out, messages, `cut every ${cut} bytes`);
  }
});

test('bytes that are no STUN header, or a message above the limit, end the stream', () => {
  assert.deepEqual(new StunFrameSplitter(1024).push(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), { ok: false, error: 'bytes that are no STUN header' });
  const big = bindingBytes({ software: 'x'.repeat(100) });
  assert.deepEqual(new StunFrameSplitter(64).push(big.subarray(0, 20)), { ok: false, error: `a ${big.length}-byte message, more than the 64 allowed` });
  const splitter = new StunFrameSplitter(1024);
  const good = bindingBytes();
  const frames = splitter.push(Buffer.concat([good, Buffer.alloc(20, 0xff)]));
  assert.equal(frames.ok, false, 'a good message followed by garbage still fails the stream');
});
