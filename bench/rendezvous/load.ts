/**
 * The load half of the rendezvous benchmark: `homeport rendezvous` as its own process with 10,000
 * configured agents, and load-generator processes (simulated-agents.ts) that register them all over
 * loopback and then heartbeat every 10 s while the rendezvous checks each one's reachability every 30 s
 * (its default). Measured on the rendezvous process alone: registrations/s during the ramp, then CPU
 * (from /proc/<pid>/stat) and VmRSS over a steady window.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChildProcess } from 'node:child_process';
import { ensureSelfSigned } from '../../src/tls/selfsigned.js';
import { readdirSync, readFileSync } from 'node:fs';
import { parseProcStat } from '../proxy/measure.js';
import { spawnTracked, stopTracked, treeCpuSeconds, treeRssBytes } from '../proxy/processes.js';
import type { AgentCounters, WorkerCommand, WorkerReport } from './worker-protocol.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const WORKER = fileURLToPath(new URL('./simulated-agents.js', import.meta.url));
const MIB = 1024 * 1024;
/** Simulated agents per source address: below the rendezvous's 256 unfinished handshakes per IP. */
const AGENTS_PER_IP = 250;
const FIRST_PORT = 20_000;

export interface LoadSettings {
  agents: number;
  /** Load-generator processes (each stays well below the default 20,000 open files). */
  workers: number;
  heartbeatMs: number;
  /** After the ramp, before measuring: the first round of checks and pings goes by. */
  settleMs: number;
  /** The steady window CPU is measured over: a multiple of the 10 s heartbeat and the 30 s probe interval. */
  windowMs: number;
  /** Handshakes in flight per load-generator process during the ramp. */
  concurrencyPerWorker: number;
  rampTimeoutMs: number;
  /** Run the rendezvous under --cpu-prof, writing the profile to this folder. */
  cpuProfileDir?: string;
}

export interface LoadResult {
  agents: number;
  registered: number;
  failedToRegister: number;
  rampSeconds: number;
  registrationsPerSec: number;
  /** Most registrations in any one second of the ramp. */
  peakRegistrationsPerSec: number;
  windowSeconds: number;
  /** % of one core: rendezvous user + system CPU over the window / window length. */
  cpuPercent: number;
  /** The part of it spent on the event loop's thread; the rest is GC helper and libuv pool threads. */
  mainThreadCpuPercent: number;
  /** VmRSS at the end of the window, and the most seen while sampling it. */
  rssMB: number;
  rssMaxMB: number;
  rssAfterRampMB: number;
  /** VmRSS every 5 s through the window. */
  rssSamplesMB: number[];
  /** What the agents saw over the window, per second. */
  pingsPerSec: number;
  pongsPerSec: number;
  /** Reachability checks that reached the agents, and how many of them were full TLS handshakes. */
  checksPerSec: number;
  fullHandshakesPerSec: number;
  /** Check results the rendezvous sent to the agents (only changes, and a repeat every 5 min). */
  probeResultsPerSec: number;
  /** Results the agents received over the whole run, by verdict: every agent should have heard "reachable". */
  resultsReachable: number;
  resultsUnreachable: number;
  /** Sessions lost during the run (none expected). */
  disconnected: number;
  /** % of one core used by all load-generator processes over the window, for context. */
  loadGeneratorCpuPercent: number;
  /** Log lines of level warn and above the rendezvous wrote, and the first few of them. */
  rendezvousWarnings: number;
  warningSamples: string[];
  failures: string[];
}

type Log = (message: string) => void;

interface Worker {
  child: ChildProcess;
  reports: WorkerReport[];
  waiters: ((report: WorkerReport) => boolean)[];
}

interface AgentSpec {
  name: string;
  secret: string;
  ip: string;
  port: number;
}

/** Agent i: its name, its secret, and its punched address 127.77.<i / 250>.1:<20000 + i % 250>. */
function agentSpecs(count: number): AgentSpec[] {
  const secretPrefix = randomBytes(12).toString('hex');
  return Array.from({ length: count }, (_, index) => ({
    name: `sim-${String(index).padStart(5, '0')}`,
    secret: `${secretPrefix}-${index}`,
    ip: `127.77.${Math.floor(index / AGENTS_PER_IP)}.1`,
    port: FIRST_PORT + (index % AGENTS_PER_IP),
  }));
}

function rendezvousConfig(specs: AgentSpec[], heartbeatMs: number): string {
  const agents = specs.map((spec) => `[[agent]]\nname = "${spec.name}"\nsecret = "${spec.secret}"\n`).join('');
  // probeInterval and probeTimeout keep their defaults (30 s, 5 s); the log level is what a user runs
  return `[rendezvous]
control = "127.0.0.1:0"
http = "127.0.0.1:0"
stateDir = "./state"
heartbeat = "${heartbeatMs / 1000}s"
[stun]
listen = "127.0.0.1:0"
[tls]
certDir = "./rv-certs"
hostnames = ["127.0.0.1"]
[log]
level = "info"
${agents}`;
}

interface LogLine {
  level?: number;
  msg?: string;
  controlPort?: number;
}

async function readLogLines(file: string): Promise<LogLine[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').flatMap((line) => {
    try {
      return line.startsWith('{') ? [JSON.parse(line) as LogLine] : [];
    } catch {
      return [];
    }
  });
}

async function waitForControlPort(child: ChildProcess, logFile: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const listening = (await readLogLines(logFile)).find((line) => line.msg === 'rendezvous listening');
    if (listening?.controlPort) return listening.controlPort;
    if (child.exitCode !== null || child.signalCode !== null) break;
    await sleep(100);
  }
  const text = await readFile(logFile, 'utf8').catch(() => '');
  throw new Error(`the rendezvous did not start listening: ${text.trim().split('\n').slice(-5).join('\n')}`);
}

function startWorker(): Worker {
  const child = spawnTracked(process.execPath, [WORKER], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const worker: Worker = { child, reports: [], waiters: [] };
  child.on('message', (report: WorkerReport) => {
    const waiter = worker.waiters.findIndex((matches) => matches(report));
    if (waiter >= 0) worker.waiters.splice(waiter, 1);
    else worker.reports.push(report);
  });
  return worker;
}

/** The next report of `type` from a worker (one that came early is taken first). */
function nextReport<T extends WorkerReport['type']>(worker: Worker, type: T, timeoutMs = 10_000): Promise<Extract<WorkerReport, { type: T }>> {
  const early = worker.reports.findIndex((report) => report.type === type);
  if (early >= 0) return Promise.resolve(worker.reports.splice(early, 1)[0] as Extract<WorkerReport, { type: T }>);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`load generator pid ${worker.child.pid} sent no "${type}" within ${timeoutMs} ms`)), timeoutMs);
    worker.waiters.push((report) => {
      if (report.type !== type) return false;
      clearTimeout(timer);
      resolve(report as Extract<WorkerReport, { type: T }>);
      return true;
    });
  });
}

function send(worker: Worker, command: WorkerCommand): void {
  worker.child.send(command);
}

interface Totals {
  counters: Omit<AgentCounters, 'registeredAtMs'>;
  failures: string[];
}

/** Asks every worker for its counters; registration times are collected into `registrations`. */
async function collect(workers: Worker[], registrations: number[]): Promise<Totals> {
  for (const worker of workers) send(worker, { type: 'counters' });
  const reports = await Promise.all(workers.map((worker) => nextReport(worker, 'counters')));
  const counters = { registered: 0, failed: 0, disconnected: 0, pings: 0, pongs: 0, probesReachable: 0, probesUnreachable: 0, probeConnections: 0, probeHandshakes: 0 };
  const failures: string[] = [];
  for (const report of reports) {
    for (const key of Object.keys(counters) as (keyof typeof counters)[]) counters[key] += report.counters[key];
    registrations.push(...report.counters.registeredAtMs);
    failures.push(...report.failures);
  }
  return { counters, failures };
}

function peakPerSecond(timesMs: number[]): number {
  const buckets = new Map<number, number>();
  for (const time of timesMs) buckets.set(Math.floor(time / 1000), (buckets.get(Math.floor(time / 1000)) ?? 0) + 1);
  return Math.max(0, ...buckets.values());
}

async function waitForRamp(workers: Worker[], agents: number, registrations: number[], timeoutMs: number, log: Log): Promise<Totals> {
  const deadline = Date.now() + timeoutMs;
  let totals = await collect(workers, registrations);
  let lastLog = 0;
  while (totals.counters.registered + totals.counters.failed < agents && Date.now() < deadline) {
    await sleep(250);
    totals = await collect(workers, registrations);
    if (Date.now() - lastLog >= 2000) {
      log(`ramp: ${totals.counters.registered} registered, ${totals.counters.failed} failed`);
      lastLog = Date.now();
    }
  }
  return totals;
}

const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds of a process's main thread (the event loop) and of all its other threads (GC helpers, libuv pool). */
function threadCpuSeconds(pid: number): { main: number; others: number } {
  const split = { main: 0, others: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended between listing and reading
    }
    const stat = parseProcStat(text);
    if (stat.ok) split[Number(tid) === pid ? 'main' : 'others'] += stat.value.cpuTicks / CLOCK_TICKS_PER_SECOND;
  }
  return split;
}

function sampleRss(pid: number): number {
  return treeRssBytes(pid) / MIB;
}

/** Runs the load benchmark; every process it started is stopped before it returns or throws. */
export async function measureLoad(runDir: string, settings: LoadSettings, log: Log): Promise<LoadResult> {
  const specs = agentSpecs(settings.agents);
  const certificate = await ensureSelfSigned(join(runDir, 'agent-certs'), ['127.0.0.1'], new Date());
  const configFile = join(runDir, 'rendezvous.toml');
  await writeFile(configFile, rendezvousConfig(specs, settings.heartbeatMs));
  const logFile = join(runDir, 'rendezvous.log');
  const logFd = openSync(logFile, 'a');
  const profiling = settings.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${settings.cpuProfileDir}`] : [];
  if (settings.cpuProfileDir) await mkdir(settings.cpuProfileDir, { recursive: true });
  const rendezvous = spawnTracked(process.execPath, [...profiling, CLI, 'rendezvous', '--config', configFile], { cwd: runDir, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  const workers: Worker[] = [];
  try {
    const controlPort = await waitForControlPort(rendezvous, logFile, 30_000);
    const pid = rendezvous.pid!;
    log(`rendezvous pid ${pid} listening on 127.0.0.1:${controlPort} with ${settings.agents} agents configured; RSS ${sampleRss(pid).toFixed(1)} MB`);
    for (let index = 0; index < settings.workers; index++) workers.push(startWorker());
    await Promise.all(workers.map((worker) => nextReport(worker, 'ready')));

    const registrations: number[] = [];
    const rampStarted = Date.now();
    const share = Math.ceil(specs.length / workers.length);
    workers.forEach((worker, index) => send(worker, {
      type: 'start',
      server: { host: '127.0.0.1', port: controlPort },
      agents: specs.slice(index * share, (index + 1) * share),
      cert: certificate.material.cert,
      key: certificate.material.key,
      fingerprint: certificate.leaf.fingerprint256,
      heartbeatMs: settings.heartbeatMs,
      concurrency: settings.concurrencyPerWorker,
    }));
    const ramp = await waitForRamp(workers, settings.agents, registrations, settings.rampTimeoutMs, log);
    const rampSeconds = (Math.max(rampStarted, ...registrations) - rampStarted) / 1000;
    const rssAfterRampMB = sampleRss(pid);
    log(`ramp done: ${ramp.counters.registered} registered, ${ramp.counters.failed} failed in ${rampSeconds.toFixed(1)} s; RSS ${rssAfterRampMB.toFixed(1)} MB; settling ${settings.settleMs / 1000} s`);
    await sleep(settings.settleMs);

    const before = await collect(workers, registrations);
    const cpuBefore = treeCpuSeconds(pid);
    const threadsBefore = threadCpuSeconds(pid);
    const generatorsBefore = workers.reduce((sum, worker) => sum + treeCpuSeconds(worker.child.pid!), 0);
    const windowStarted = performance.now();
    const rssSamplesMB: number[] = [];
    while (performance.now() - windowStarted < settings.windowMs) {
      await sleep(Math.min(5000, settings.windowMs - (performance.now() - windowStarted)));
      rssSamplesMB.push(sampleRss(pid));
    }
    const windowSeconds = (performance.now() - windowStarted) / 1000;
    const cpuSeconds = treeCpuSeconds(pid) - cpuBefore;
    const threadsAfter = threadCpuSeconds(pid);
    const generatorSeconds = workers.reduce((sum, worker) => sum + treeCpuSeconds(worker.child.pid!), 0) - generatorsBefore;
    const rssMB = sampleRss(pid);
    const after = await collect(workers, registrations);

    const rate = (key: keyof Totals['counters']): number => (after.counters[key] - before.counters[key]) / windowSeconds;
    const probeResults = rate('probesReachable') + rate('probesUnreachable');
    const lines = await readLogLines(logFile);
    const warnings = lines.filter((line) => (line.level ?? 0) >= 40);
    return {
      agents: settings.agents,
      registered: ramp.counters.registered,
      failedToRegister: ramp.counters.failed,
      rampSeconds,
      registrationsPerSec: rampSeconds > 0 ? ramp.counters.registered / rampSeconds : 0,
      peakRegistrationsPerSec: peakPerSecond(registrations),
      windowSeconds,
      cpuPercent: (100 * cpuSeconds) / windowSeconds,
      mainThreadCpuPercent: (100 * (threadsAfter.main - threadsBefore.main)) / windowSeconds,
      rssMB,
      rssMaxMB: Math.max(...rssSamplesMB, rssMB),
      rssSamplesMB,
      rssAfterRampMB,
      pingsPerSec: rate('pings'),
      pongsPerSec: rate('pongs'),
      checksPerSec: rate('probeConnections'),
      fullHandshakesPerSec: rate('probeHandshakes'),
      probeResultsPerSec: probeResults,
      resultsReachable: after.counters.probesReachable,
      resultsUnreachable: after.counters.probesUnreachable,
      disconnected: after.counters.disconnected,
      loadGeneratorCpuPercent: (100 * generatorSeconds) / windowSeconds,
      rendezvousWarnings: warnings.length,
      warningSamples: warnings.slice(0, 5).map((line) => line.msg ?? JSON.stringify(line)),
      failures: [...new Set(after.failures)].slice(0, 10),
    };
  } finally {
    // the rendezvous first: it closes every session as it stops, so the agents' exit does not flood its log
    await stopTracked(rendezvous, 10_000);
    await Promise.all(workers.map((worker) => stopTracked(worker.child, 2000)));
  }
}
