import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, formatDuration } from '../../src/common/duration.js';

test('parseDuration reads the units users write', () => {
  const table: [string, number | undefined][] = [
    ['0', 0], ['500ms', 500], ['5s', 5000], ['2m', 120_000], ['24h', 86_400_000], ['7d', 604_800_000],
    ['1h30m', 5_400_000], ['1.5s', 1500], [' 30s ', 30_000],
    ['', undefined], ['5', undefined], ['5 s', undefined], ['-5s', undefined], ['5w', undefined], ['s', undefined],
  ];
  for (const [input, expected] of table) {
    const result = parseDuration(input);
    if (expected === undefined) assert.equal(result.ok, false, `"${input}" should be refused`);
    else assert.deepEqual(result, { ok: true, value: expected }, `"${input}"`);
  }
});

test('formatDuration writes compact durations', () => {
  assert.equal(formatDuration(250), '250ms');
  assert.equal(formatDuration(90_000), '1m30s');
  assert.equal(formatDuration(86_400_000 + 3_600_000), '1d1h');
});
