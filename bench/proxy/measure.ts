/**
 * Pure parsers for what the proxy benchmark reads: wrk's report, curl's --write-out line, and the
 * /proc files that give a process's CPU time, memory and open connections. No I/O here, so each
 * parser has a table test on real output (test/bench-parsers.test.ts).
 */
import { err, ok, type Result } from '../../src/common/result.js';

export interface WrkReport {
  requests: number;
  durationS: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** connect + read + write + timeout errors. */
  socketErrors: number;
  /** Responses that were not 2xx or 3xx: a proxy answering 502 fast must not look fast. */
  non2xx: number;
}

const WRK_TIME_UNITS_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** wrk prints times as "452.34us", "3.40ms", "1.20s", "2.00m". */
export function parseWrkTimeMs(text: string): Result<number> {
  const match = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)$/.exec(text.trim());
  if (!match) return err(`"${text}" is not a wrk time such as 3.40ms`);
  return ok(Number(match[1]) * WRK_TIME_UNITS_MS[match[2]!]!);
}

/** Reads the report of `wrk --latency`; refuses a report without the latency distribution. */
export function parseWrkReport(text: string): Result<WrkReport> {
  const totals = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),/m.exec(text);
  const rate = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  const p50 = /^\s+50(?:\.000)?%\s+(\S+)/m.exec(text);
  const p99 = /^\s+99(?:\.000)?%\s+(\S+)/m.exec(text);
  if (!totals || !rate) return err('wrk output has no "N requests in" / "Requests/sec:" lines');
  if (!p50 || !p99) return err('wrk output has no latency distribution; run wrk with --latency');
  const p50Ms = parseWrkTimeMs(p50[1]!);
  const p99Ms = parseWrkTimeMs(p99[1]!);
  const durationMs = parseWrkTimeMs(`${totals[2]}${totals[3]}`);
  if (!p50Ms.ok) return p50Ms;
  if (!p99Ms.ok) return p99Ms;
  if (!durationMs.ok) return durationMs;
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const socketErrors = socket ? socket.slice(1, 5).reduce((sum, n) => sum + Number(n), 0) : 0;
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  return ok({
    requests: Number(totals[1]),
    durationS: durationMs.value / 1000,
    requestsPerSec: Number(rate[1]),
    p50Ms: p50Ms.value,
    p99Ms: p99Ms.value,
    socketErrors,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
  });
}

/** The --write-out format parseCurlWriteOut reads: status, bytes received, bytes per second. */
export const CURL_WRITE_OUT = '%{http_code} %{size_download} %{speed_download}\\n';

export interface CurlTransfer {
  status: number;
  bytes: number;
  bytesPerSec: number;
}

export function parseCurlWriteOut(text: string): Result<CurlTransfer> {
  const match = /^(\d{3}) (\d+) (\d+(?:\.\d+)?)$/.exec(text.trim());
  if (!match) return err(`curl --write-out "${text.trim()}" is not "status bytes speed"`);
  return ok({ status: Number(match[1]), bytes: Number(match[2]), bytesPerSec: Number(match[3]) });
}

export interface ProcStat {
  pid: number;
  ppid: number;
  /** utime + stime of the whole process (all threads), in clock ticks. */
  cpuTicks: number;
}

/** /proc/<pid>/stat: the command name may hold spaces and parentheses, so fields count from its last ")". */
export function parseProcStat(text: string): Result<ProcStat> {
  const close = text.lastIndexOf(')');
  const pid = Number.parseInt(text, 10);
  if (close < 0 || !Number.isInteger(pid)) return err('not a /proc/<pid>/stat line');
  // After ")": state(3) ppid(4) ... utime(14) stime(15); index 0 here is field 3.
  const fields = text.slice(close + 2).trim().split(/\s+/);
  const ppid = Number(fields[1]);
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (![ppid, utime, stime].every(Number.isInteger)) return err('/proc/<pid>/stat has too few fields');
  return ok({ pid, ppid, cpuTicks: utime + stime });
}

/** VmRSS from /proc/<pid>/status, in bytes; 0 for a zombie or kernel thread (no VmRSS line). */
export function parseVmRssBytes(statusText: string): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(statusText);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Established TCP connections whose local port is `port`, from /proc/net/tcp or /proc/net/tcp6. */
export function countEstablished(procNetTcpText: string, port: number): number {
  const localPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const ESTABLISHED = '01';
  let count = 0;
  for (const line of procNetTcpText.split('\n').slice(1)) {
    const [, local, , state] = line.trim().split(/\s+/);
    if (local?.endsWith(localPort) && state === ESTABLISHED) count += 1;
  }
  return count;
}

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
