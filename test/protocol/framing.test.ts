import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFrame, FrameDecoder, MAX_FRAME_BYTES } from '../../src/protocol/framing.js';

const objects = [{ type: 'a' }, { type: 'b', text: 'größer → 𝄞', nested: { n: 1 } }, { list: [1, 2, 3], empty: {} }];
const stream = Buffer.concat(objects.map((o) => encodeFrame(o)));

function header(length: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(length);
  return bytes;
}

function rawFrame(body: string | Buffer): Buffer {
  const bytes = Buffer.from(body);
  return Buffer.concat([header(bytes.length), bytes]);
}

function decodeAll(chunks: Buffer[]): object[] {
  const decoder = new FrameDecoder();
  const out: object[] = [];
  for (const chunk of chunks) {
    const result = decoder.push(chunk);
    assert.ok(result.ok, result.ok ? '' : result.error);
    out.push(...result.value);
  }
  assert.equal(decoder.bufferedBytes, 0, 'nothing left over after whole frames');
  return out;
}

test('encodeFrame writes a 4-byte big-endian length, then the UTF-8 JSON', () => {
  const frame = encodeFrame({ type: 'ping', note: 'é' });
  const body = JSON.stringify({ type: 'ping', note: 'é' });
  assert.equal(frame.readUInt32BE(0), Buffer.byteLength(body));
  assert.equal(frame.subarray(4).toString('utf8'), body);
});

test('frames split at every byte boundary decode to the same objects', () => {
  for (let cut = 0; cut <= stream.length; cut++) {
    assert.deepEqual(decodeAll([stream.subarray(0, cut), stream.subarray(cut)]), objects, `cut at ${cut}`);
  }
});

test('frames fed one byte at a time decode to the same objects', () => {
  const bytes = [...stream].map((byte) => Buffer.from([byte]));
  assert.deepEqual(decodeAll(bytes), objects);
});

test('many frames in one chunk all come out, in order', () => {
  const many = Array.from({ length: 500 }, (_, index) => ({ index }));
  const decoded = decodeAll([Buffer.concat(many.map((o) => encodeFrame(o)))]);
  assert.deepEqual(decoded, many);
});

test('a partial frame is kept until its last byte arrives', () => {
  const decoder = new FrameDecoder();
  const frame = encodeFrame({ type: 'slow' });
  const first = decoder.push(frame.subarray(0, frame.length - 1));
  assert.deepEqual(first, { ok: true, value: [] });
  assert.equal(decoder.bufferedBytes, frame.length - 1);
  assert.deepEqual(decoder.push(frame.subarray(frame.length - 1)), { ok: true, value: [{ type: 'slow' }] });
});

test('a body of exactly MAX_FRAME_BYTES is accepted, one more byte is not', () => {
  const filler = (size: number) => JSON.stringify({ pad: 'x'.repeat(size - '{"pad":""}'.length) });
  const largest = filler(MAX_FRAME_BYTES);
  assert.equal(Buffer.byteLength(largest), MAX_FRAME_BYTES);
  assert.deepEqual(new FrameDecoder().push(rawFrame(largest)), { ok: true, value: [JSON.parse(largest)] });

  const tooLarge = new FrameDecoder().push(rawFrame(filler(MAX_FRAME_BYTES + 1)));
  assert.ok(!tooLarge.ok);
  assert.match(tooLarge.error, /frame length 16385 is outside 1\.\.16384 bytes/);
  assert.throws(() => encodeFrame(JSON.parse(filler(MAX_FRAME_BYTES + 1))), RangeError);
});

test('an oversize or zero length prefix fails as soon as the header arrives, before any body', () => {
  for (const length of [0, MAX_FRAME_BYTES + 1, 0xffffffff]) {
    const decoder = new FrameDecoder();
    const result = decoder.push(header(length));
    assert.ok(!result.ok, `length ${length}`);
    assert.match(result.error, new RegExp(`frame length ${length} is outside`));
    assert.equal(decoder.bufferedBytes, 0);
  }
});

test('the decoder never holds more than one maximal frame', () => {
  const decoder = new FrameDecoder();
  const body = Buffer.alloc(MAX_FRAME_BYTES - 1, 0x20);
  assert.ok(decoder.push(Buffer.concat([header(MAX_FRAME_BYTES), body])).ok);
  assert.equal(decoder.bufferedBytes, 4 + MAX_FRAME_BYTES - 1);
});

test('bodies that are not one JSON object are errors, not exceptions', () => {
  const cases: [body: string | Buffer, reason: RegExp][] = [
    ['{"type":', /not UTF-8 JSON/],
    ['not json', /not UTF-8 JSON/],
    ['{"a":1} {"b":2}', /not UTF-8 JSON/],
    [Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), /not UTF-8 JSON/],
    ['[{"type":"ping"}]', /holds an array, not a JSON object/],
    ['null', /holds null, not a JSON object/],
    ['42', /holds number, not a JSON object/],
    ['"hello"', /holds string, not a JSON object/],
    ['true', /holds boolean, not a JSON object/],
  ];
  for (const [body, reason] of cases) {
    const result = new FrameDecoder().push(rawFrame(body));
    assert.ok(!result.ok, String(body));
    assert.match(result.error, reason, String(body));
  }
});

test('after an error the decoder stays failed, even for valid frames', () => {
  const decoder = new FrameDecoder();
  const first = decoder.push(Buffer.concat([encodeFrame({ ok: 1 }), rawFrame('oops')]));
  assert.ok(!first.ok);
  const later = decoder.push(encodeFrame({ ok: 2 }));
  assert.deepEqual(later, first);
});
