/**
 * Forwarding layer benchmark: homeport's forwarder (straight on node:http) against http-proxy-3 set up the
 * way http-proxy users do, and no proxy at all, in front of the same upstream. Plain HTTP on 127.0.0.1, so
 * the forwarding cost is measured without TLS. Each forwarder and the upstream run in their own child
 * process (this file started again with a mode argument), so CPU time and RSS belong to one forwarder.
 * Per forwarder: wrk requests/s and p99 on 1 KiB, curl throughput of 1 GiB (median of 3), forwarder CPU
 * seconds per GiB, RSS after the runs, and whether aborted downloads release their upstream response
 * within 2 s (http-proxy 1.18.1 never did: http-party/node-http-proxy#1586). Prints a table, writes
 * bench/results/forwarder.json, takes about a minute and never more than two; every child is killed on
 * exit, error or signal. See bench/README.md.
 *
 * Run: `npx tsc -p . && node dist/bench/forwarder.js`
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, mkdir } from 'node:fs/promises';
import { Agent, createServer, get, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ProxyServer } from 'http-proxy-3';
import { compileRoutes } from '../src/agent/router.js';
import { createForwarder } from '../src/agent/forwarder.js';
import { createHttpHandlers } from '../src/agent/http-handler.js';
import { writeFileAtomic } from '../src/common/atomic-write.js';
import { createLogger } from '../src/common/logger.js';
import { DEFAULT_TIMEOUTS } from '../src/config/agent-types.js';
import { measureRequests, measureThroughput, MIB, type Target, type WrkSettings } from './proxy/clients.js';
import { BIG_FILE, SMALL_FILE } from './proxy/fixtures.js';
import { killAllTracked, spawnTracked, stopTracked, treeCpuSeconds, treeRssBytes } from './proxy/processes.js';
import { REPO_ROOT } from './proxy/servers.js';

const FORWARDERS = ['direct', 'homeport', 'http-proxy-3'] as const;
type ForwarderName = (typeof FORWARDERS)[number];
type ChildMode = 'upstream' | Exclude<ForwarderName, 'direct'>;

const SETUPS: Record<ForwarderName, string> = {
  direct: 'no proxy: the clients talk to the upstream',
  homeport: 'http.Server + createHttpHandlers(compileRoutes([* /]), createForwarder(DEFAULT_TIMEOUTS)), pino at "warn" to /dev/null (no access log)',
  'http-proxy-3': 'http.Server + new ProxyServer({ target, agent: http.Agent({ keepAlive: true, maxSockets: 1024 }), xfwd: true }).web(), 502 on error',
};

const WRK: WrkSettings = { connections: 50, threads: 1, warmupS: 2, durationS: 8 };
const DOWNLOADS = 3;
const ABORTED_DOWNLOADS = 5;
/** Each aborted download is cut after this much, far from either end of the 1 GiB body. */
const ABORT_AFTER_BYTES = 8 * MIB;
const RELEASE_WINDOW_MS = 2000;
const START_TIMEOUT_MS = 10_000;
const DEADLINE_MS = 115_000;

const THIS_FILE = fileURLToPath(import.meta.url);
const RESULTS_FILE = join(REPO_ROOT, 'bench/results/forwarder.json');
const USAGE = 'Usage: node dist/bench/forwarder.js   (about a minute; no options)';

/** What a child tells the benchmark over IPC. */
type ChildMessage = { type: 'listening'; port: number } | { type: 'upstream-response-aborted' } | { type: 'small-served'; count: number };
/** What the benchmark asks the upstream over IPC. */
type ParentMessage = { type: 'count-small' };

// ---------------------------------------------------------------- child processes

function report(message: ChildMessage): void {
  process.send?.(message);
}

/** Listens on a free loopback port, says which, and exits with the benchmark (the IPC channel closing). */
function listenAndReport(server: Server): void {
  server.listen(0, '127.0.0.1', () => report({ type: 'listening', port: (server.address() as AddressInfo).port }));
  process.once('disconnect', () => process.exit(0));
}

const SMALL_BODY = randomBytes(SMALL_FILE.bytes);
/** The 1 GiB body is this buffer written 1024 times: no disk, and the upstream costs little CPU. */
const BIG_CHUNK = randomBytes(MIB);

/**
 * Streams the 1 GiB body with back-pressure. A response closed before its end (the forwarder released
 * the upstream connection, or the client did in the direct case) is reported to the benchmark.
 */
function sendBigBody(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG_FILE.bytes });
  res.once('close', () => {
    if (!res.writableFinished) report({ type: 'upstream-response-aborted' });
  });
  let sent = 0;
  const writeMore = (): void => {
    while (sent < BIG_FILE.bytes) {
      sent += BIG_CHUNK.length;
      if (sent >= BIG_FILE.bytes) return void res.end(BIG_CHUNK);
      if (!res.write(BIG_CHUNK)) return void res.once('drain', writeMore); // a closed response never drains
    }
  };
  writeMore();
}

function serveUpstream(): void {
  let smallServed = 0;
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'count-small') report({ type: 'small-served', count: smallServed });
  });
  const server = createServer((req, res) => {
    if (req.url === `/${BIG_FILE.name}`) return sendBigBody(res);
    if (req.url !== `/${SMALL_FILE.name}`) return void res.writeHead(404, { 'content-length': 0 }).end();
    smallServed += 1;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': SMALL_BODY.length });
    res.end(SMALL_BODY);
  });
  // Longer than any forwarder's pool keeps an idle socket, so no pooled connection is closed under it.
  server.keepAliveTimeout = 65_000;
  listenAndReport(server);
}

function homeportServer(upstream: URL): Server {
  const logger = createLogger({ level: 'warn', destination: '/dev/null', pretty: false });
  const router = compileRoutes([{ host: '*', path: '/', target: upstream, insecure: false }]);
  const handlers = createHttpHandlers({ router, forwarder: createForwarder({ timeouts: DEFAULT_TIMEOUTS, logger }), logger });
  return createServer().on('request', handlers.request).on('upgrade', handlers.upgrade);
}

function httpProxy3Server(upstream: URL): Server {
  const proxy = new ProxyServer({ target: upstream.href, agent: new Agent({ keepAlive: true, maxSockets: 1024 }), xfwd: true });
  proxy.on('error', (_error: Error, _req: IncomingMessage, res: ServerResponse | NodeJS.WritableStream) => {
    if (!('writeHead' in res)) return void (res as NodeJS.WritableStream).end();
    if (!res.headersSent) res.writeHead(502, { 'content-length': 0 });
    res.end();
  });
  return createServer((req, res) => proxy.web(req, res));
}

function serveChild(mode: ChildMode, upstreamUrl: string | undefined): void {
  if (mode === 'upstream') return serveUpstream();
  const upstream = new URL(upstreamUrl ?? '');
  listenAndReport(mode === 'homeport' ? homeportServer(upstream) : httpProxy3Server(upstream));
}

// ---------------------------------------------------------------- the benchmark

interface RunningChild {
  child: ChildProcess;
  pid: number;
  url: string;
  port: number;
}

async function startChild(mode: ChildMode, args: string[] = []): Promise<RunningChild> {
  const child = spawnTracked(process.execPath, [THIS_FILE, mode, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${mode} did not listen within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    child.on('message', (message: ChildMessage) => {
      if (message.type !== 'listening') return;
      clearTimeout(timer);
      resolve(message.port);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${mode} exited with ${code ?? signal} before listening`));
    });
  });
  return { child, pid: child.pid!, port, url: `http://127.0.0.1:${port}` };
}

interface Row {
  setup: string;
  requestsPerSec?: number;
  p50Ms?: number;
  p99Ms?: number;
  /** Forwarder CPU per forwarded 1 KiB request (wrk warm-up included): the cost, whatever share of the cores it got. */
  cpuMicrosPerRequest?: number;
  /** Socket errors and non-2xx answers during wrk: a forwarder failing fast must not look fast. */
  wrkErrors?: number;
  throughputMBps?: number;
  throughputRunsMBps?: number[];
  cpuSecondsPerGiB?: number;
  rssIdleMB?: number;
  rssAfterMB?: number;
  /** Upstream responses closed within RELEASE_WINDOW_MS of the client aborting, of ABORTED_DOWNLOADS. */
  abortsReleased?: number;
  error?: string;
}

/** How many 1 KiB responses the upstream has sent so far. */
async function smallServed(upstream: RunningChild): Promise<number> {
  const answer = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the upstream did not say how many requests it served')), START_TIMEOUT_MS);
    const onMessage = (message: ChildMessage) => {
      if (message.type !== 'small-served') return;
      clearTimeout(timer);
      upstream.child.off('message', onMessage);
      resolve(message.count);
    };
    upstream.child.on('message', onMessage);
  });
  upstream.child.send({ type: 'count-small' } satisfies ParentMessage);
  return answer;
}

/** wrk on the 1 KiB body, and the forwarder's CPU time per request the upstream served meanwhile. */
async function measureSmallRequests(target: Target, upstream: RunningChild): Promise<Partial<Row>> {
  const cpuBefore = target.pid === undefined ? 0 : treeCpuSeconds(target.pid);
  const servedBefore = await smallServed(upstream);
  const wrk = await measureRequests(target, WRK);
  const figures: Partial<Row> = { requestsPerSec: wrk.requestsPerSec, p50Ms: wrk.p50Ms, p99Ms: wrk.p99Ms, wrkErrors: wrk.socketErrors + wrk.non2xx };
  if (target.pid !== undefined) {
    const served = (await smallServed(upstream)) - servedBefore;
    figures.cpuMicrosPerRequest = ((treeCpuSeconds(target.pid) - cpuBefore) * 1e6) / served;
  }
  return figures;
}

/** Times (performance.now()) at which the upstream reported a response closed before its end. */
const upstreamAborts: number[] = [];

/** A download of the 1 GiB body cut by the client after ABORT_AFTER_BYTES; resolves with the time of the cut. */
function abortMidStream(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = get(`${url}/${BIG_FILE.name}`, { agent: false }, (res) => {
      if (res.statusCode !== 200) return void req.destroy(new Error(`status ${res.statusCode}`));
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received < ABORT_AFTER_BYTES) return;
        req.destroy();
        resolve(performance.now());
      });
    });
    req.on('error', reject); // ignored once resolved
    req.setTimeout(START_TIMEOUT_MS, () => req.destroy(new Error(`no ${ABORT_AFTER_BYTES / MIB} MiB within ${START_TIMEOUT_MS / 1000} s`)));
  });
}

/** Aborts ABORTED_DOWNLOADS parallel downloads mid-stream; counts the upstream responses closed within the window. */
async function measureAbortRelease(url: string): Promise<number> {
  const before = upstreamAborts.length;
  const cutAt = await Promise.all(Array.from({ length: ABORTED_DOWNLOADS }, () => abortMidStream(url)));
  const windowEnd = Math.max(...cutAt) + RELEASE_WINDOW_MS;
  while (upstreamAborts.length - before < ABORTED_DOWNLOADS && performance.now() < windowEnd) await sleep(20);
  return upstreamAborts.slice(before).filter((at) => at <= windowEnd).length;
}

function log(name: string, message: string): void {
  console.log(`${name.padEnd(12)} ${message}`);
}

/** Every figure for one forwarder; a failing step ends the row with an error and the others still run. */
async function measureForwarder(name: ForwarderName, upstream: RunningChild): Promise<Row> {
  const row: Row = { setup: SETUPS[name] };
  const proxy = name === 'direct' ? undefined : await startChild(name, [upstream.url]).catch((error: Error) => error);
  try {
    if (proxy instanceof Error) throw proxy;
    if (proxy) row.rssIdleMB = treeRssBytes(proxy.pid) / MIB;
    // Plain HTTP: curl never reads the CA file the shared client helpers pass.
    const target: Target = { url: (proxy ?? upstream).url, port: (proxy ?? upstream).port, pid: proxy?.pid, caFile: '/dev/null' };

    Object.assign(row, await measureSmallRequests(target, upstream));
    log(name, `1 KiB: ${fixed(row.requestsPerSec, 0)} req/s, p99 ${row.p99Ms} ms, ${fixed(row.cpuMicrosPerRequest, 1)} CPU us/req, ${row.wrkErrors} errors`);

    const throughput = await measureThroughput(target, DOWNLOADS);
    Object.assign(row, { throughputMBps: throughput.medianMBps, throughputRunsMBps: throughput.runsMBps, cpuSecondsPerGiB: throughput.cpuSecondsPerGiB });
    const cpu = throughput.cpuSecondsPerGiB === undefined ? '' : `, ${throughput.cpuSecondsPerGiB.toFixed(2)} CPU s/GiB`;
    log(name, `1 GiB: ${throughput.runsMBps.map((speed) => speed.toFixed(0)).join(', ')} MB/s${cpu}`);

    row.abortsReleased = await measureAbortRelease(target.url);
    log(name, `${row.abortsReleased} of ${ABORTED_DOWNLOADS} aborted downloads released their upstream within ${RELEASE_WINDOW_MS / 1000} s`);
    if (proxy) row.rssAfterMB = treeRssBytes(proxy.pid) / MIB;
  } catch (error) {
    row.error = (error as Error).message;
    log(name, `FAILED: ${row.error}`);
  } finally {
    if (proxy && !(proxy instanceof Error)) await stopTracked(proxy.child);
  }
  return row;
}

const COLUMNS: { title: string; cell: (row: Row) => string }[] = [
  { title: 'req/s', cell: (row) => fixed(row.requestsPerSec, 0) },
  { title: 'p99 ms', cell: (row) => fixed(row.p99Ms, 2) },
  { title: 'CPU us/req', cell: (row) => fixed(row.cpuMicrosPerRequest, 1) },
  { title: 'MB/s', cell: (row) => fixed(row.throughputMBps, 0) },
  { title: 'CPU s/GiB', cell: (row) => fixed(row.cpuSecondsPerGiB, 2) },
  { title: 'RSS MB', cell: (row) => fixed(row.rssAfterMB, 1) },
  { title: 'aborts released', cell: (row) => (row.abortsReleased === undefined ? '-' : `${row.abortsReleased}/${ABORTED_DOWNLOADS}`) },
];

function fixed(value: number | undefined, digits: number): string {
  return value === undefined ? '-' : value.toFixed(digits);
}

function formatTable(rows: Partial<Record<ForwarderName, Row>>): string {
  const widths = COLUMNS.map((column) => Math.max(9, column.title.length) + 2);
  const line = (name: string, cells: string[], note = '') => `${name.padEnd(12)}${cells.map((cell, i) => cell.padStart(widths[i]!)).join('')}  ${note}`.trimEnd();
  const body = FORWARDERS.map((name) => {
    const row = rows[name]!;
    const notes = [row.wrkErrors ? `${row.wrkErrors} wrk errors` : '', row.error ? `FAILED: ${row.error}` : ''].filter(Boolean);
    return line(name, COLUMNS.map((column) => column.cell(row)), notes.join('; '));
  });
  return [line('', COLUMNS.map((column) => column.title)), ...body].join('\n');
}

const COMPARED = ['requestsPerSec', 'p99Ms', 'cpuMicrosPerRequest', 'throughputMBps', 'cpuSecondsPerGiB', 'rssAfterMB'] as const;

/** homeport's figure divided by http-proxy-3's: above 1 is better for req/s and MB/s, below 1 for the others. */
function ratios(rows: Partial<Record<ForwarderName, Row>>): Record<string, number | undefined> {
  return Object.fromEntries(
    COMPARED.map((figure) => {
      const ours = rows.homeport?.[figure];
      const theirs = rows['http-proxy-3']?.[figure];
      return [figure, ours === undefined || !theirs ? undefined : ours / theirs];
    }),
  );
}

function formatRatios(values: Record<string, number | undefined>): string {
  const shown = Object.entries(values).map(([figure, value]) => `${figure} ${value === undefined ? '-' : `${value.toFixed(2)}x`}`);
  return `homeport / http-proxy-3: ${shown.join(', ')}`;
}

async function httpProxy3Version(): Promise<string> {
  const manifest = await readFile(join(REPO_ROOT, 'node_modules/http-proxy-3/package.json'), 'utf8');
  return (JSON.parse(manifest) as { version: string }).version;
}

/** JSON replacer: three decimals are more than any of these figures can resolve. */
const roundFigures = (_key: string, value: unknown) => (typeof value === 'number' ? Math.round(value * 1000) / 1000 : value);

async function run(): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg();
  console.log(`forwarder benchmark: ${FORWARDERS.join(', ')} on 127.0.0.1 (plain HTTP), ${cpus().length} cores, load ${loadBefore.map((load) => load.toFixed(2)).join(' ')}`);
  const upstream = await startChild('upstream');
  upstream.child.on('message', (message: ChildMessage) => {
    if (message.type === 'upstream-response-aborted') upstreamAborts.push(performance.now());
  });
  const rows: Partial<Record<ForwarderName, Row>> = {};
  try {
    for (const name of FORWARDERS) rows[name] = await measureForwarder(name, upstream);
  } finally {
    await stopTracked(upstream.child);
  }
  const loadAfter = loadavg();
  const homeportVsHttpProxy3 = ratios(rows);
  console.log(`\n${formatTable(rows)}\n\n${formatRatios(homeportVsHttpProxy3)}`);
  console.log(`load average (1, 5, 15 min): ${loadBefore.map((load) => load.toFixed(2)).join(' ')} before, ${loadAfter.map((load) => load.toFixed(2)).join(' ')} after`);
  if (Math.max(loadBefore[0]!, loadAfter[0]!) > 0.5 * cpus().length) console.log('note: other work was running; the absolute figures are noisy, the ratios less so');
  const file = {
    date: started.toISOString(),
    machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', kernel: release(), loadAverageBefore: loadBefore, loadAverageAfter: loadAfter },
    versions: { node: process.version, 'http-proxy-3': await httpProxy3Version() },
    method: {
      units: 'MB = 2^20 bytes; CPU = user + system time of the forwarder process, per 1 KiB request (wrk warm-up and run, counted by the upstream) and per GiB passed; RSS = VmRSS of the forwarder process after all runs',
      requests: `wrk -c${WRK.connections} -t${WRK.threads} -d${WRK.durationS}s --latency on ${SMALL_FILE.bytes} bytes after ${WRK.warmupS} s warm-up`,
      throughput: `${DOWNLOADS} x curl of ${BIG_FILE.bytes} bytes, median`,
      aborts: `${ABORTED_DOWNLOADS} parallel downloads cut by the client after ${ABORT_AFTER_BYTES / MIB} MiB; upstream responses closed within ${RELEASE_WINDOW_MS} ms`,
    },
    results: rows,
    homeportVsHttpProxy3,
  };
  await mkdir(dirname(RESULTS_FILE), { recursive: true });
  await writeFileAtomic(RESULTS_FILE, `${JSON.stringify(file, roundFigures, 2)}\n`, 0o644);
  console.log(`wrote ${RESULTS_FILE}`);
}

async function main(): Promise<void> {
  process.on('exit', killAllTracked);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping every process the benchmark started`);
      process.exit(130);
    });
  }
  setTimeout(() => {
    console.error(`forwarder benchmark: still running after ${DEADLINE_MS / 1000} s; stopping`);
    process.exit(1);
  }, DEADLINE_MS).unref();
  await run();
}

const [mode, upstreamArgument] = process.argv.slice(2);
if (mode === 'upstream' || mode === 'homeport' || mode === 'http-proxy-3') {
  serveChild(mode, upstreamArgument);
} else if (mode !== undefined) {
  console.log(USAGE);
  process.exitCode = mode === '--help' || mode === '-h' ? 0 : 2;
} else {
  main().catch((error: unknown) => {
    console.error(`forwarder benchmark: ${(error as Error).message}`);
    process.exitCode = 1;
  });
}
