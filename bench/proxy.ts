/**
 * Side-by-side proxy benchmark (issue 2): homeport, nginx and Caddy terminating TLS in front of the same
 * nginx upstream, and the upstream reached directly over plain HTTP as the baseline. Same clients for
 * all: curl (1 GiB single stream; 100 slow parallel streams for memory) and wrk (1 KiB requests/s).
 * Prints a table and the targets, writes bench/results/proxy.json, exits 0 even when a target is missed.
 * Everything runs on 127.0.0.1, every step has a time limit, and every process started is stopped, also
 * on an error or Ctrl-C. See bench/README.md.
 *
 * Run: `npx tsc -p . && node dist/bench/proxy.js [--only homeport,nginx] [--quick]`
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/common/atomic-write.js';
import { measureRequests, measureStreams, measureThroughput, MIB, type StreamSettings, type Target, type WrkSettings } from './proxy/clients.js';
import { createCertificate, ensureStaticFiles, BIG_FILE, SMALL_FILE } from './proxy/fixtures.js';
import { killAllTracked, runCommand, treeRssBytes } from './proxy/processes.js';
import { evaluateGoals, formatGoals, type GoalOutcome, formatResultsTable, mergeResults, TARGET_NAMES, type Mode, type Results, type TargetName, type TargetResult } from './proxy/report.js';
import { REPO_ROOT, startProxy, startUpstream, type RunContext, type RunningServer } from './proxy/servers.js';

const USAGE = `Usage: node dist/bench/proxy.js [--only <names>] [--quick]

  --only <names>  comma-separated subset of ${TARGET_NAMES.join(',')} (env BENCH_PROXY_ONLY);
                  rows not measured are carried over from bench/results/proxy.json
  --quick         1 download instead of 3, 4 s of wrk instead of 10 (env BENCH_PROXY_QUICK=1)
  -h, --help      this help`;

interface Settings {
  mode: Mode;
  downloads: number;
  wrk: WrkSettings;
  streams: StreamSettings;
  /** The whole run is cut after this long, whatever hangs. */
  deadlineMs: number;
}

const STREAMS: StreamSettings = { count: 100, bytesPerSecEach: 2 * MIB, sampleAfterMs: 5000 };
const SETTINGS: Record<Mode, Settings> = {
  full: { mode: 'full', downloads: 3, wrk: { connections: 50, threads: 2, warmupS: 2, durationS: 10 }, streams: STREAMS, deadlineMs: 8 * 60_000 },
  quick: { mode: 'quick', downloads: 1, wrk: { connections: 50, threads: 2, warmupS: 1, durationS: 4 }, streams: { ...STREAMS, sampleAfterMs: 3000 }, deadlineMs: 4 * 60_000 },
};

const RESULTS_FILE = join(REPO_ROOT, 'bench/results/proxy.json');
const CACHE_DIR = join(tmpdir(), 'homeport-bench');

function readOptions(argv: string[]): { only: TargetName[]; settings: Settings } | string {
  const { values } = parseArgs({ args: argv, options: { only: { type: 'string' }, quick: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return USAGE;
  const onlyText = values.only ?? process.env.BENCH_PROXY_ONLY ?? '';
  const only = onlyText.split(',').map((name) => name.trim().toLowerCase()).filter(Boolean);
  const unknown = only.filter((name) => !(TARGET_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`--only: unknown ${unknown.join(', ')}; choose from ${TARGET_NAMES.join(', ')}`);
  const quick = values.quick === true || process.env.BENCH_PROXY_QUICK === '1';
  return { only: only.length > 0 ? (only as TargetName[]) : [...TARGET_NAMES], settings: SETTINGS[quick ? 'quick' : 'full'] };
}

const firstLine = (text: string) => text.trim().split('\n')[0] ?? '';

async function toolVersions(): Promise<Record<string, string>> {
  const ask = async (command: string, args: string[], pick: (out: string) => string) => {
    const { stdout, stderr } = await runCommand(command, args, 5000);
    return pick(`${stdout}\n${stderr}`.trim()) || 'not found';
  };
  return {
    node: process.version,
    nginx: await ask('nginx', ['-v'], (out) => /nginx\/(\S+)/.exec(out)?.[1] ?? ''),
    caddy: await ask('caddy', ['version'], firstLine),
    wrk: await ask('wrk', ['-v'], (out) => /^wrk (\S+)/m.exec(out)?.[1] ?? ''),
    curl: await ask('curl', ['--version'], (out) => /^curl (\S+)/.exec(out)?.[1] ?? ''),
    openssl: await ask('openssl', ['version'], firstLine),
  };
}

function log(name: string, message: string): void {
  console.log(`${name.padEnd(8)} ${message}`);
}

/** All figures for one row. A failing step ends the row with an error; the other rows still run. */
async function measureTarget(name: TargetName, ctx: RunContext, upstream: RunningServer, settings: Settings): Promise<TargetResult> {
  const row: TargetResult = { measuredAt: new Date().toISOString(), mode: settings.mode, setup: upstream.setup };
  let proxy: RunningServer | undefined;
  try {
    if (name !== 'direct') {
      proxy = await startProxy(name, ctx, upstream.port);
      row.setup = proxy.setup;
      row.rssIdleMB = treeRssBytes(proxy.pid) / MIB;
    }
    const target: Target = { url: (proxy ?? upstream).url, port: (proxy ?? upstream).port, pid: proxy?.pid, caFile: ctx.cert.certFile };

    const throughput = await measureThroughput(target, settings.downloads);
    Object.assign(row, { throughputMBps: throughput.medianMBps, throughputRunsMBps: throughput.runsMBps, cpuSecondsPerGiB: throughput.cpuSecondsPerGiB });
    log(name, `1 GiB: ${throughput.runsMBps.map((speed) => speed.toFixed(0)).join(', ')} MB/s${throughput.cpuSecondsPerGiB === undefined ? '' : `, ${throughput.cpuSecondsPerGiB.toFixed(2)} CPU s/GiB`}`);

    const wrk = await measureRequests(target, settings.wrk);
    Object.assign(row, { requestsPerSec: wrk.requestsPerSec, p50Ms: wrk.p50Ms, p99Ms: wrk.p99Ms, wrkErrors: wrk.socketErrors + wrk.non2xx });
    log(name, `1 KiB: ${wrk.requestsPerSec.toFixed(0)} req/s, p99 ${wrk.p99Ms} ms, ${wrk.socketErrors + wrk.non2xx} errors`);

    if (proxy) {
      const streams = await measureStreams({ ...target, pid: proxy.pid }, settings.streams);
      Object.assign(row, { rssStreamsMB: streams.rssBytes / MIB, streamsOpen: streams.streamsOpen });
      log(name, `${streams.streamsOpen} streams open: RSS ${(streams.rssBytes / MIB).toFixed(1)} MB (idle ${row.rssIdleMB!.toFixed(1)} MB)`);
    }
  } catch (error) {
    row.error = (error as Error).message;
    log(name, `FAILED: ${row.error}`);
  } finally {
    await proxy?.stop();
  }
  return row;
}

async function readPreviousResults(): Promise<Results> {
  try {
    return (JSON.parse(await readFile(RESULTS_FILE, 'utf8')) as { results?: Results }).results ?? {};
  } catch {
    return {};
  }
}

/** Starts the upstream and measures each row in turn; the run folder is kept only when a row failed. */
async function measureAll(only: TargetName[], settings: Settings): Promise<Results> {
  await ensureStaticFiles(join(CACHE_DIR, 'files'));
  const runDir = await mkdtemp(join(CACHE_DIR, 'run-'));
  removeOnExit = runDir;
  const ctx: RunContext = { runDir, filesDir: join(CACHE_DIR, 'files'), cert: await createCertificate(runDir) };
  const upstream = await startUpstream(ctx);
  const measured: Results = {};
  try {
    for (const name of only) measured[name] = await measureTarget(name, ctx, upstream, settings);
  } finally {
    await upstream.stop();
  }
  if (Object.values(measured).some((row) => row.error)) console.log(`\nlogs and configs of this run are kept in ${runDir}`);
  else await rm(runDir, { recursive: true, force: true });
  removeOnExit = undefined;
  return measured;
}

function describeMethod(settings: Settings): Record<string, string> {
  const { downloads, wrk, streams } = settings;
  return {
    units: 'MB = 2^20 bytes; CPU = user + system seconds of the proxy and all its processes per GiB passed',
    throughput: `${downloads} x curl --http1.1 of a ${BIG_FILE.bytes}-byte random file, median`,
    requests: `wrk -c${wrk.connections} -t${wrk.threads} -d${wrk.durationS}s --latency on a ${SMALL_FILE.bytes}-byte file after ${wrk.warmupS} s warm-up`,
    rss: `sum of VmRSS of the proxy's processes, ${streams.count} downloads at ${streams.bytesPerSecEach / MIB} MB/s each, sampled after ${streams.sampleAfterMs / 1000} s`,
  };
}

async function run(only: TargetName[], settings: Settings): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg()[0]!;
  const versions = await toolVersions();
  const results = mergeResults(await readPreviousResults(), await measureAll(only, settings));
  const loadAfter = loadavg()[0]!;

  const goals = evaluateGoals(results);
  console.log(`\n${formatResultsTable(results, new Set(only))}\n\n${formatGoals(goals)}\n\n${summarize(goals)}`);
  if (Math.max(loadBefore, loadAfter) > 0.5 * cpus().length) {
    console.log(`note: load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after: other work was running; figures are noisy`);
  }
  const machine = { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 1024 ** 3), kernel: release() };
  const file = {
    date: started.toISOString(),
    mode: settings.mode,
    measured: only,
    machine: { ...machine, loadAverage1mBefore: loadBefore, loadAverage1mAfter: loadAfter },
    versions,
    method: describeMethod(settings),
    results,
    targets: goals,
  };
  await mkdir(dirname(RESULTS_FILE), { recursive: true });
  await writeFileAtomic(RESULTS_FILE, `${JSON.stringify(file, roundFigures, 2)}\n`, 0o644);
  console.log(`wrote ${RESULTS_FILE}`);
}

/** JSON replacer: three decimals are more than any of these figures can resolve. */
const roundFigures = (_key: string, value: unknown) => (typeof value === 'number' ? Math.round(value * 1000) / 1000 : value);

function summarize(goals: GoalOutcome[]): string {
  const count = (status: GoalOutcome['status']) => goals.filter((goal) => goal.status === status).length;
  const parts = [`${count('met')} met`, `${count('MISSED')} MISSED`];
  if (count('not measured') > 0) parts.push(`${count('not measured')} not measured`);
  return `homeport targets: ${parts.join(', ')}`;
}

/** This run's temp folder, removed if the run is interrupted (it holds only configs, logs and a test key). */
let removeOnExit: string | undefined;

function stopEverything(): void {
  killAllTracked();
  if (removeOnExit) rmSync(removeOnExit, { recursive: true, force: true });
}

async function main(): Promise<number> {
  const options = readOptions(process.argv.slice(2));
  if (typeof options === 'string') {
    console.log(options);
    return 0;
  }
  process.on('exit', stopEverything);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping every process the benchmark started`);
      process.exit(130);
    });
  }
  const deadline = setTimeout(() => {
    console.error(`proxy benchmark: still running after ${options.settings.deadlineMs / 60_000} min; stopping`);
    process.exit(1);
  }, options.settings.deadlineMs);
  deadline.unref();
  console.log(`proxy benchmark (${options.settings.mode}): ${options.only.join(', ')} on 127.0.0.1, ${cpus().length} cores`);
  await run(options.only, options.settings);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`proxy benchmark: ${(error as Error).message}`);
    process.exitCode = 1;
  },
);
