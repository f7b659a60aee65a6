/**
 * The clients of the relay benchmark: the same curl for every row (direct, relay, raw-splice). One
 * 1 GiB download at a time (bench/proxy/clients.ts), and N parallel downloads of distinct slices of the
 * same file, one curl process each. CPU is read from /proc around each measurement, split into user and
 * system time, for the relaying process and for the agent behind it.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { measureThroughput, MIB } from '../proxy/clients.js';
import { BIG_FILE } from '../proxy/fixtures.js';
import { CURL_WRITE_OUT, parseCurlWriteOut } from '../proxy/measure.js';
import { runCommand } from '../proxy/processes.js';

const GIB = 1024 ** 3;
const CLOCK_TICKS_PER_SECOND = 100;

/** One process's user and system CPU seconds, from /proc/<pid>/stat (fields 14 and 15, after the ")"). */
export function parseUserSystemSeconds(statText: string): { user: number; system: number } | undefined {
  const fields = statText.slice(statText.lastIndexOf(')') + 2).trim().split(/\s+/);
  const [user, system] = [Number(fields[11]), Number(fields[12])];
  if (!Number.isInteger(user) || !Number.isInteger(system)) return undefined;
  return { user: user / CLOCK_TICKS_PER_SECOND, system: system / CLOCK_TICKS_PER_SECOND };
}

function cpuOf(pid: number): { user: number; system: number } {
  let text = '';
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // exited: counts as no time, and the row fails on its transfers anyway
  }
  return parseUserSystemSeconds(text) ?? { user: 0, system: 0 };
}

/** CPU seconds per GiB passed, user + system and split, of one process while `work` ran. */
export interface CpuPerGiB {
  total: number;
  user: number;
  system: number;
}

/** Runs `work` (which returns the bytes it moved) and reads the CPU of each pid around it. */
async function withCpu<T extends { bytes: number }>(pids: readonly number[], work: () => Promise<T>): Promise<{ result: T; cpu: CpuPerGiB[] }> {
  const before = pids.map(cpuOf);
  const result = await work();
  const gib = result.bytes / GIB;
  const cpu = pids.map((pid, index) => {
    const after = cpuOf(pid);
    const user = (after.user - before[index]!.user) / gib;
    const system = (after.system - before[index]!.system) / gib;
    return { total: user + system, user, system };
  });
  return { result, cpu };
}

export interface Path {
  /** https://127.0.0.1:<port>, no trailing slash */
  url: string;
  caFile: string;
  /** Whose CPU is read: the relaying process (absent for direct), then the agent. */
  relayPid?: number;
  agentPid: number;
}

export interface PathFigures {
  single: { runsMBps: number[]; medianMBps: number; relayCpu?: CpuPerGiB; agentCpu: CpuPerGiB };
  parallel: { streams: number; mbps: number; relayCpu?: CpuPerGiB; agentCpu: CpuPerGiB };
}

const curlArgs = (caFile: string) => ['--http1.1', '--silent', '--show-error', '--cacert', caFile, '--output', '/dev/null', '--write-out', CURL_WRITE_OUT];

/** One ranged download (HTTP 206) of `bytes` bytes from `offset` of the big file; bytes received. */
async function downloadSlice(path: Path, offset: number, bytes: number): Promise<number> {
  const url = `${path.url}/${BIG_FILE.name}`;
  const args = [...curlArgs(path.caFile), '--max-time', '120', '--range', `${offset}-${offset + bytes - 1}`, url];
  const { code, stdout, stderr } = await runCommand('curl', args, 130_000);
  const transfer = parseCurlWriteOut(stdout);
  if (code !== 0 || !transfer.ok) throw new Error(`curl ${url}: exit ${code}: ${stderr.trim() || (transfer.ok ? '' : transfer.error)}`);
  if (transfer.value.status !== 206 || transfer.value.bytes !== bytes) {
    throw new Error(`curl ${url} range: status ${transfer.value.status}, ${transfer.value.bytes} of ${bytes} bytes`);
  }
  return bytes;
}

/** A short download first: JIT, TLS session, and the relay's work-connection pool warm. */
export async function warmUp(path: Path, bytes: number): Promise<void> {
  await downloadSlice(path, 0, bytes);
}

/** `streams` curl processes at once, each a distinct slice; aggregate = all bytes / wall time of the lot. */
async function parallelDownloads(path: Path, streams: number, bytesEach: number): Promise<{ bytes: number; mbps: number }> {
  const started = performance.now();
  const slices = Array.from({ length: streams }, (_, index) => downloadSlice(path, (index * bytesEach) % (BIG_FILE.bytes - bytesEach + 1), bytesEach));
  const bytes = (await Promise.all(slices)).reduce((sum, received) => sum + received, 0);
  return { bytes, mbps: bytes / MIB / ((performance.now() - started) / 1000) };
}

export async function measurePath(path: Path, settings: { downloads: number; streams: number; bytesEach: number }): Promise<PathFigures> {
  const pids = path.relayPid === undefined ? [path.agentPid] : [path.relayPid, path.agentPid];
  const split = (cpu: CpuPerGiB[]) => (cpu.length === 2 ? { relayCpu: cpu[0]!, agentCpu: cpu[1]! } : { agentCpu: cpu[0]! });

  const single = await withCpu(pids, async () => {
    const throughput = await measureThroughput({ url: path.url, port: 0, caFile: path.caFile }, settings.downloads);
    return { ...throughput, bytes: settings.downloads * BIG_FILE.bytes };
  });
  const parallel = await withCpu(pids, () => parallelDownloads(path, settings.streams, settings.bytesEach));
  return {
    single: { runsMBps: single.result.runsMBps, medianMBps: single.result.medianMBps, ...split(single.cpu) },
    parallel: { streams: settings.streams, mbps: parallel.result.mbps, ...split(parallel.cpu) },
  };
}
