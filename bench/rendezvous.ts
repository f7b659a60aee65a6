/**
 * Rendezvous benchmark (issue 3): recovery time after a NAT mapping change in the NAT lab, and the
 * rendezvous's CPU and memory with 10,000 agents on loopback. Prints a table and the targets, writes
 * bench/results/rendezvous.json, exits 0 even when a target is missed. Traffic stays on loopback and in
 * the lab's own network namespaces; every process started is stopped, also on an error, the time limit
 * (5 min) or Ctrl-C. See bench/README.md.
 *
 * Run: `npx tsc -p . && node dist/bench/rendezvous.js [--only recovery,load] [--agents N] [--window S] [--cpu-prof DIR]`
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../src/common/atomic-write.js';
import { killAllTracked } from './proxy/processes.js';
import { REPO_ROOT } from './proxy/servers.js';
import { measureLoad, type LoadSettings } from './rendezvous/load.js';
import { measureRecovery } from './rendezvous/recovery.js';
import { evaluateTargets, formatLoad, formatRecovery, formatTargets, TARGETS, type Measured } from './rendezvous/report.js';

const PARTS = ['recovery', 'load'] as const;
type Part = (typeof PARTS)[number];

const USAGE = `Usage: node dist/bench/rendezvous.js [--only recovery,load] [--agents N] [--window S] [--cpu-prof DIR]

  --only <parts>    recovery (NAT lab, needs root), load (10,000 agents on loopback); default both
  --agents <n>      simulated agents for the load part (default 10000)
  --window <s>      steady window CPU is measured over, >= 30 (default 60)
  --cpu-prof <dir>  run the rendezvous of the load part under node --cpu-prof, profile into <dir>
  --keep            keep the load part's folder (configs, rendezvous log) in $TMPDIR/homeport-bench
  -h, --help        this help`;

const RESULTS_FILE = join(REPO_ROOT, 'bench/results/rendezvous.json');
const DEADLINE_MS = 5 * 60_000;
const RECOVERY_RUNS = 5;

interface Options {
  parts: Part[];
  load: LoadSettings;
  keep: boolean;
}

function readOptions(argv: string[]): Options | string {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' }, agents: { type: 'string' }, window: { type: 'string' }, 'cpu-prof': { type: 'string' },
      keep: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return USAGE;
  const parts = (values.only ?? PARTS.join(',')).split(',').map((part) => part.trim()).filter(Boolean);
  const unknown = parts.filter((part) => !(PARTS as readonly string[]).includes(part));
  if (unknown.length > 0) throw new Error(`--only: unknown ${unknown.join(', ')}; choose from ${PARTS.join(', ')}`);
  const agents = Number(values.agents ?? 10_000);
  const windowS = Number(values.window ?? 60);
  if (!Number.isInteger(agents) || agents < 1 || agents > 10_000) throw new Error(`--agents must be an integer from 1 to 10000, not "${values.agents}"`);
  if (!Number.isFinite(windowS) || windowS < 30) throw new Error(`--window must be at least 30 (seconds), not "${values.window}"`);
  return {
    parts: parts as Part[],
    keep: values.keep === true,
    load: {
      agents,
      workers: 4,
      heartbeatMs: 10_000,
      settleMs: 10_000,
      windowMs: windowS * 1000,
      concurrencyPerWorker: 32,
      rampTimeoutMs: 90_000,
      ...(values['cpu-prof'] ? { cpuProfileDir: resolve(values['cpu-prof']) } : {}),
    },
  };
}

function log(part: string, message: string): void {
  console.log(`${part.padEnd(8)} ${message}`);
}

/** This run's folder for the load part, removed on an interrupted run too (configs, log, test keys). */
let removeOnExit: string | undefined;

async function runLoad(options: Options): Promise<Measured['load']> {
  const base = join(tmpdir(), 'homeport-bench');
  await mkdir(base, { recursive: true });
  const runDir = await mkdtemp(join(base, 'rendezvous-'));
  if (!options.keep) removeOnExit = runDir;
  try {
    return await measureLoad(runDir, options.load, (message) => log('load', message));
  } catch (error) {
    removeOnExit = undefined;
    log('load', `FAILED: ${(error as Error).message} (its folder is kept: ${runDir})`);
    return { error: (error as Error).message };
  } finally {
    if (removeOnExit) await rm(runDir, { recursive: true, force: true });
    else log('load', `folder: ${runDir}`);
    removeOnExit = undefined;
  }
}

async function runRecovery(): Promise<Measured['recovery']> {
  try {
    const result = await measureRecovery(RECOVERY_RUNS, (message) => log('recovery', message));
    if ('skipped' in result) log('recovery', `skipped: ${result.skipped}`);
    return result;
  } catch (error) {
    log('recovery', `FAILED: ${(error as Error).message}`);
    return { error: (error as Error).message };
  }
}

async function run(options: Options): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg()[0]!;
  const measured: Measured = {};
  if (options.parts.includes('recovery')) measured.recovery = await runRecovery();
  if (options.parts.includes('load')) measured.load = await runLoad(options);
  const loadAfter = loadavg()[0]!;
  const targets = evaluateTargets(measured);
  console.log(`\n${formatRecovery(measured.recovery)}\n\n${formatLoad(measured.load)}\n\n${formatTargets(targets)}`);
  if (Math.max(loadBefore, loadAfter) > 0.5 * cpus().length) {
    console.log(`note: load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after: other work was running; figures are noisy`);
  }
  const file = {
    date: started.toISOString(),
    parts: options.parts,
    machine: {
      cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 1024 ** 3), kernel: release(),
      node: process.version, loadAverage1mBefore: loadBefore, loadAverage1mAfter: loadAfter,
    },
    method: {
      recovery: `NAT lab: fc home router, agent heartbeat 5 s, rendezvous probeInterval 30 s; ${RECOVERY_RUNS} router reboots at a random point of the heartbeat cycle, alternating a new port allocation and a new WAN address; time from the change until /go/home/movie.bin answers 302 to a new address (curl from the remote namespace every ~0.1 s) from which a 1 MiB download matches its SHA-256`,
      load: `homeport rendezvous as its own process (log level info), ${options.load.agents} agents configured; ${options.load.workers} load-generator processes, each agent connecting from its own 127.77.x.1:port, doing the real handshake and a sealed ping every ${options.load.heartbeatMs / 1000} s, listening on that address so the rendezvous's TLS check (default every 30 s) reaches it; CPU = user + system of the rendezvous from /proc/<pid>/stat over a ${options.load.windowMs / 1000} s window starting ${options.load.settleMs / 1000} s after the last registration; RSS = VmRSS`,
    },
    targets: { recoveryMaxMs: TARGETS.recoveryMaxMs, cpuPercent: TARGETS.cpuPercent, rssMB: TARGETS.rssMB },
    results: measured,
    verdicts: targets,
  };
  await mkdir(dirname(RESULTS_FILE), { recursive: true });
  await writeFileAtomic(RESULTS_FILE, `${JSON.stringify(file, roundFigures, 2)}\n`, 0o644);
  console.log(`wrote ${RESULTS_FILE}`);
}

/** JSON replacer: three decimals are more than any of these figures can resolve. */
const roundFigures = (_key: string, value: unknown) => (typeof value === 'number' ? Math.round(value * 1000) / 1000 : value);

/** Whatever ends the run (an error, the time limit, Ctrl-C), every process started goes and so does the run folder. */
function guardRun(): void {
  process.on('exit', () => {
    killAllTracked();
    if (removeOnExit) rmSync(removeOnExit, { recursive: true, force: true });
  });
  const stop = (why: string, code: number): never => {
    console.error(`\nrendezvous benchmark: ${why}; stopping every process it started`);
    process.exit(code);
  };
  // the lab (test/netlab/lab.ts) also tears itself down on exit and on these signals
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(signal, () => stop(signal, 130));
  setTimeout(() => stop(`still running after ${DEADLINE_MS / 60_000} min`, 1), DEADLINE_MS).unref();
}

async function main(): Promise<number> {
  const options = readOptions(process.argv.slice(2));
  if (typeof options === 'string') {
    console.log(options);
    return 0;
  }
  guardRun();
  console.log(`rendezvous benchmark: ${options.parts.join(', ')}; ${cpus().length} cores`);
  await run(options);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`rendezvous benchmark: ${(error as Error).message}`);
    process.exitCode = 1;
  },
);
