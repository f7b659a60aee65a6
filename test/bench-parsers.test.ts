import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  countEstablished, median, parseCurlWriteOut, parseProcStat, parseVmRssBytes, parseWrkReport, parseWrkTimeMs,
} from '../bench/proxy/measure.js';

// Real reports of wrk 4.1.0 (Debian) against the benchmark's nginx, through Caddy, and a server that resets.
const WRK_PLAIN = `Running 2s test @ http://127.0.0.1:45007/small-1KiB.bin
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     0.95ms    1.06ms   9.02ms   85.48%
    Req/Sec    35.30k     2.39k   39.03k    60.00%
  Latency Distribution
     50%  466.00us
     75%    1.33ms
     90%    2.46ms
     99%    4.50ms
  140907 requests in 2.01s, 171.74MB read
Requests/sec:  70154.29
Transfer/sec:     85.50MB
`;

const WRK_NOT_FOUND = `Running 1s test @ http://127.0.0.1:45007/nope
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   520.42us  442.71us   3.50ms   82.87%
    Req/Sec    48.92k     8.19k   81.35k    95.24%
  Latency Distribution
     50%  411.00us
     75%  695.00us
     90%    1.11ms
     99%    2.05ms
  102118 requests in 1.10s, 30.00MB read
  Non-2xx or 3xx responses: 102118
Requests/sec:  92750.06
Transfer/sec:     27.24MB
`;

const WRK_RESETS = `Running 1s test @ http://127.0.0.1:18099/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   244.50us  563.45us   8.04ms   94.08%
    Req/Sec     6.91k     3.00k   10.37k    63.64%
  Latency Distribution
     50%   91.00us
     75%  178.00us
     90%  501.00us
     99%    2.90ms
  7547 requests in 1.10s, 294.80KB read
  Socket errors: connect 0, read 15093, write 0, timeout 0
Requests/sec:   6854.65
Transfer/sec:    267.76KB
`;

test('parseWrkReport reads rate, percentiles and errors from real wrk reports', () => {
  const table: [string, string, object][] = [
    ['plain', WRK_PLAIN, { requests: 140907, durationS: 2.01, requestsPerSec: 70154.29, p50Ms: 0.466, p99Ms: 4.5, socketErrors: 0, non2xx: 0 }],
    ['404s', WRK_NOT_FOUND, { requests: 102118, durationS: 1.1, requestsPerSec: 92750.06, p50Ms: 0.411, p99Ms: 2.05, socketErrors: 0, non2xx: 102118 }],
    ['resets', WRK_RESETS, { requests: 7547, durationS: 1.1, requestsPerSec: 6854.65, p50Ms: 0.091, p99Ms: 2.9, socketErrors: 15093, non2xx: 0 }],
  ];
  for (const [name, text, expected] of table) {
    const report = parseWrkReport(text);
    assert.ok(report.ok, name);
    for (const [key, value] of Object.entries(expected)) {
      assert.ok(Math.abs((report.value as unknown as Record<string, number>)[key]! - value) < 1e-9, `${name}: ${key}`);
    }
  }
});

test('parseWrkReport refuses output without --latency or without totals', () => {
  const withoutLatency = WRK_PLAIN.replace(/ {2}Latency Distribution[\s\S]*?99%\s+\S+\n/, '');
  const noLatency = parseWrkReport(withoutLatency);
  assert.equal(noLatency.ok, false);
  if (!noLatency.ok) assert.match(noLatency.error, /--latency/);
  assert.equal(parseWrkReport('unable to connect to 127.0.0.1:1 Connection refused\n').ok, false);
  assert.equal(parseWrkReport('').ok, false);
});

test('parseWrkTimeMs converts every unit wrk prints', () => {
  const table: [string, number | undefined][] = [
    ['466.00us', 0.466], ['4.50ms', 4.5], ['1.20s', 1200], ['2.00m', 120_000], ['1.00h', 3_600_000],
    ['12', undefined], ['ms', undefined], ['-1.00ms', undefined], ['1.0 ms', undefined],
  ];
  for (const [text, expected] of table) {
    const result = parseWrkTimeMs(text);
    if (expected === undefined) assert.equal(result.ok, false, text);
    else assert.ok(result.ok && Math.abs(result.value - expected) < 1e-9, text);
  }
});

test('parseCurlWriteOut reads status, size and speed, and refuses anything else', () => {
  assert.deepEqual(parseCurlWriteOut('200 1073741824 812345678\n'), { ok: true, value: { status: 200, bytes: 1073741824, bytesPerSec: 812345678 } });
  assert.deepEqual(parseCurlWriteOut('200 1024 261758\n'), { ok: true, value: { status: 200, bytes: 1024, bytesPerSec: 261758 } });
  assert.deepEqual(parseCurlWriteOut('000 0 0\n'), { ok: true, value: { status: 0, bytes: 0, bytesPerSec: 0 } });
  for (const bad of ['', '200', '200 12', 'curl: (7) Failed to connect', '200 12 3\n200 12 3']) {
    assert.equal(parseCurlWriteOut(bad).ok, false, JSON.stringify(bad));
  }
});

test('parseProcStat takes ppid and CPU ticks after the last ")" of the command name', () => {
  const cat = '10032 (cat) R 9955 9955 6566 0 -1 4194304 99 0 0 0 7 5 0 0 20 0 1 0 67743 3133440 392 18446744073709551615';
  assert.deepEqual(parseProcStat(cat), { ok: true, value: { pid: 10032, ppid: 9955, cpuTicks: 12 } });
  const odd = '77 (nginx: worker) (x) S 76 76 6566 0 -1 4194304 99 0 0 0 250 40 0 0 20 0 1 0 67743 3133440 392';
  assert.deepEqual(parseProcStat(odd), { ok: true, value: { pid: 77, ppid: 76, cpuTicks: 290 } });
  assert.equal(parseProcStat('').ok, false);
  assert.equal(parseProcStat('12 (short) S 1').ok, false);
});

test('parseVmRssBytes reads kB from /proc/<pid>/status, 0 when absent', () => {
  assert.equal(parseVmRssBytes('Name:\tnode\nVmPeak:\t  999 kB\nVmRSS:\t    2092 kB\nRssAnon:\t 1000 kB\n'), 2092 * 1024);
  assert.equal(parseVmRssBytes('Name:\tkthreadd\nState:\tS (sleeping)\n'), 0);
});

test('countEstablished counts server-side connections of one port only', () => {
  const tcp = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1047 1',
    '   1: 0100007F:1F90 0100007F:9459 01 00000000:00000000 00:00000000 00000000     0        0 2001 1',
    '   2: 0100007F:1F90 0100007F:945A 01 00000000:00000000 00:00000000 00000000     0        0 2002 1',
    '   3: 0100007F:1F90 0100007F:945B 06 00000000:00000000 03:00000C65 00000000     0        0 0 3',
    '   4: 0100007F:9459 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 2003 1',
    '   5: 0100007F:1F91 0100007F:945C 01 00000000:00000000 00:00000000 00000000     0        0 2004 1',
    '',
  ].join('\n');
  assert.equal(countEstablished(tcp, 8080), 2); // 0x1F90: listening, TIME_WAIT and the client side do not count
  assert.equal(countEstablished(tcp, 8081), 1);
  assert.equal(countEstablished(tcp, 80), 0);
});

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([7]), 7);
  assert.ok(Number.isNaN(median([])));
});
