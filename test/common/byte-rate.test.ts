import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseByteRate } from '../../src/common/byte-rate.js';

test('accepted rates in bytes per second, decimal prefixes, bits divided by 8', () => {
  const cases: [text: string, bytesPerSecond: number][] = [
    ['20MB/s', 20_000_000],
    ['100Mbit/s', 12_500_000],
    ['512kB/s', 512_000],
    ['1.5GB/s', 1_500_000_000],
    ['1GB/s', 1_000_000_000],
    ['8Gbit/s', 1_000_000_000],
    ['2kB/s', 2000],
    ['16kbit/s', 2000],
    ['1024B/s', 1024],
    ['8192bit/s', 1024],
    ['0.5MB/s', 500_000],
    ['2.25Mbit/s', 281_250],
    ['0', 0],
    [' 0 ', 0],
    ['20 MB/s', 20_000_000],
    ['  20MB/s\t', 20_000_000],
    ['100 Mbit/s', 12_500_000],
  ];
  for (const [text, bytesPerSecond] of cases) {
    const parsed = parseByteRate(text);
    assert.ok(parsed.ok, `${JSON.stringify(text)}: ${parsed.ok ? '' : parsed.error}`);
    assert.equal(parsed.value, bytesPerSecond, JSON.stringify(text));
  }
});

test('refused texts: the error quotes the text and gives an example', () => {
  const cases = [
    '', ' ', '20', '20MB', '20mb/s', '20Mb/s', '20 MB /s', '20MBps', '20MiB/s', '20TB/s', '-1MB/s', '+1MB/s', '1e6B/s',
    '.5MB/s', '5.MB/s', '1,5MB/s', 'MB/s', 'fast', '0MB/s extra', '20MB/s/s', '0x10MB/s', '00', 'Infinity', 'NaN',
  ];
  for (const text of cases) {
    const parsed = parseByteRate(text);
    assert.equal(parsed.ok, false, `${JSON.stringify(text)} was accepted as ${parsed.ok ? parsed.value : ''}`);
    if (parsed.ok) continue;
    assert.ok(parsed.error.includes(`"${text}"`), `${JSON.stringify(text)}: ${parsed.error}`);
    assert.match(parsed.error, /e\.g\. "\d+(k|M|G)?(B|bit)\/s"/, `${JSON.stringify(text)}: ${parsed.error}`);
  }
});

test('rates below 1 kB/s are refused with an example; 0 (unlimited) is not', () => {
  for (const text of ['1B/s', '999B/s', '7999bit/s', '0.5kB/s', '0MB/s', '0.0001MB/s', '0B/s']) {
    const parsed = parseByteRate(text);
    assert.equal(parsed.ok, false, `${text} was accepted as ${parsed.ok ? parsed.value : ''}`);
    if (parsed.ok) continue;
    assert.ok(parsed.error.includes(`"${text}"`), parsed.error);
    assert.match(parsed.error, /below 1kB\/s/, parsed.error);
    assert.match(parsed.error, /e\.g\. "1MB\/s"/, parsed.error);
  }
});

test('exactly 1 kB/s, the lowest rate the error message names, is accepted', () => {
  for (const [text, value] of [['1kB/s', 1000], ['1000B/s', 1000], ['8kbit/s', 1000]] as const) {
    const parsed = parseByteRate(text);
    assert.ok(parsed.ok, `${text}: ${parsed.ok ? '' : parsed.error}`);
    assert.equal(parsed.value, value);
  }
});
