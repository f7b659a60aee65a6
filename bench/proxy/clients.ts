/**
 * The clients of the benchmark, the same for every target: curl for single-stream throughput and for
 * many slow concurrent streams, wrk for small-file requests per second. Every client has a time limit.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BIG_FILE, SMALL_FILE } from './fixtures.js';
import { CURL_WRITE_OUT, median, parseCurlWriteOut, parseWrkReport, type WrkReport } from './measure.js';
import { establishedOn, runCommand, spawnTracked, stopTracked, treeCpuSeconds, treeRssBytes } from './processes.js';

export const MIB = 1024 ** 2;
const GIB = 1024 ** 3;

/** What is measured: `pid` is the proxy's root process (absent for the direct baseline). */
export interface Target {
  url: string;
  port: number;
  pid?: number;
  caFile: string;
}

/** HTTP/1.1 everywhere: homeport offers only http/1.1, so Caddy must not get to multiplex with h2. */
const curlBase = (caFile: string) => ['--http1.1', '--silent', '--show-error', '--cacert', caFile];

export interface ThroughputResult {
  runsMBps: number[];
  medianMBps: number;
  /** Proxy CPU (user + system, all processes) per GiB passed; undefined without a proxy. */
  cpuSecondsPerGiB?: number;
}

async function downloadBigFile(target: Target): Promise<number> {
  const args = [...curlBase(target.caFile), '--output', '/dev/null', '--write-out', CURL_WRITE_OUT, '--max-time', '120'];
  const { code, stdout, stderr } = await runCommand('curl', [...args, `${target.url}/${BIG_FILE.name}`], 130_000);
  const transfer = parseCurlWriteOut(stdout);
  if (code !== 0 || !transfer.ok) throw new Error(`curl ${target.url}: exit ${code}: ${stderr.trim() || (transfer.ok ? '' : transfer.error)}`);
  const { status, bytes, bytesPerSec } = transfer.value;
  if (status !== 200 || bytes !== BIG_FILE.bytes) throw new Error(`curl ${target.url}: status ${status}, ${bytes} of ${BIG_FILE.bytes} bytes`);
  return bytesPerSec / MIB;
}

/** `runs` downloads of the 1 GiB file one after the other; the proxy's CPU time is read around all of them. */
export async function measureThroughput(target: Target, runs: number): Promise<ThroughputResult> {
  const cpuBefore = target.pid === undefined ? 0 : treeCpuSeconds(target.pid);
  const runsMBps: number[] = [];
  for (let run = 0; run < runs; run += 1) runsMBps.push(await downloadBigFile(target));
  const result: ThroughputResult = { runsMBps, medianMBps: median(runsMBps) };
  if (target.pid !== undefined) result.cpuSecondsPerGiB = (treeCpuSeconds(target.pid) - cpuBefore) / ((runs * BIG_FILE.bytes) / GIB);
  return result;
}

export interface WrkSettings {
  connections: number;
  threads: number;
  warmupS: number;
  durationS: number;
}

async function wrk(url: string, settings: WrkSettings, durationS: number): Promise<string> {
  const args = [`-c${settings.connections}`, `-t${settings.threads}`, `-d${durationS}s`, '--latency', url];
  const { code, stdout, stderr } = await runCommand('wrk', args, (durationS + 20) * 1000);
  if (code !== 0) throw new Error(`wrk ${url}: exit ${code}: ${stderr.trim()}`);
  return stdout;
}

/** Requests per second and latency for the 1 KiB file, after a warm-up (TLS sessions, JIT, pools). */
export async function measureRequests(target: Target, settings: WrkSettings): Promise<WrkReport> {
  const url = `${target.url}/${SMALL_FILE.name}`;
  await wrk(url, settings, settings.warmupS);
  const report = parseWrkReport(await wrk(url, settings, settings.durationS));
  if (!report.ok) throw new Error(`wrk ${url}: ${report.error}`);
  return report.value;
}

export interface StreamSettings {
  count: number;
  bytesPerSecEach: number;
  sampleAfterMs: number;
}

export interface StreamsResult {
  rssBytes: number;
  /** Client connections established on the proxy's port when RSS was sampled. */
  streamsOpen: number;
}

/**
 * `count` rate-limited downloads of the 1 GiB file held open at once (one curl process, parallel
 * transfers); the proxy's memory is sampled while they run, then the downloads are cut.
 */
export async function measureStreams(target: Target & { pid: number }, settings: StreamSettings): Promise<StreamsResult> {
  const args = [
    ...curlBase(target.caFile), '--parallel', '--parallel-immediate', '--parallel-max', String(settings.count),
    '--limit-rate', String(settings.bytesPerSecEach), '--max-time', String(settings.sampleAfterMs / 1000 + 30),
    `${target.url}/${BIG_FILE.name}?stream=[1-${settings.count}]`,
  ];
  const curl = spawnTracked('curl', args, { stdio: 'ignore' });
  try {
    await sleep(settings.sampleAfterMs);
    return { rssBytes: treeRssBytes(target.pid), streamsOpen: establishedOn(target.port) };
  } finally {
    await stopTracked(curl);
  }
}
