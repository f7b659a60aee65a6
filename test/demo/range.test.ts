import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange } from '../../src/demo/range.js';

test('parseRange follows RFC 9110 for a 1000-byte resource', () => {
  const table: [string | undefined, ReturnType<typeof parseRange>][] = [
    [undefined, undefined],
    ['bytes=0-99', { start: 0, end: 99 }],
    ['bytes=900-', { start: 900, end: 999 }],
    ['bytes=-100', { start: 900, end: 999 }],
    ['bytes=-5000', { start: 0, end: 999 }],
    ['bytes=990-5000', { start: 990, end: 999 }],
    ['bytes=1000-', 'unsatisfiable'],
    ['bytes=-0', 'unsatisfiable'],
    ['bytes=5-1', undefined],
    ['bytes=0-1,5-6', undefined],
    ['items=0-1', undefined],
    ['bytes=-', undefined],
  ];
  for (const [header, expected] of table) assert.deepEqual(parseRange(header, 1000), expected, String(header));
});
