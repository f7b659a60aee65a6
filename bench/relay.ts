/**
 * Relay benchmark (issue 9): one curl through three paths to the same homeport agent in the same run:
 * `direct` (the agent's own port), `relay` (the rendezvous's relay port, over a work connection) and
 * `raw-splice` (a minimal frp-like Node splice in front of the agent's port). Single 1 GiB stream
 * throughput, 20 parallel streams, and CPU seconds per GiB of the relaying process and of the agent.
 * Prints a table and the two targets, writes bench/results/relay.json, exits 0 when a target is missed
 * (1 only when the run itself broke). Everything on 127.0.0.1; every process is stopped at the end,
 * also on an error, the time limit or Ctrl-C. See bench/README.md.
 *
 * Run: `npx tsc -p . && node dist/bench/relay.js [--quick] [--profile]`
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { serviceNodeFlags } from '../src/service/description.js';
import { writeFileAtomic } from '../src/common/atomic-write.js';
import { MIB } from './proxy/clients.js';
import { BIG_FILE, createCertificate, ensureStaticFiles } from './proxy/fixtures.js';
import { killAllTracked, runCommand } from './proxy/processes.js';
import { REPO_ROOT, startUpstream, type RunContext } from './proxy/servers.js';
import { measurePath, warmUp, type Path } from './relay/measure.js';
import { readProfileSummary, type ProfileEntry } from './relay/profile.js';
import { evaluateTargets, formatRows, formatTargets, ROW_NAMES, type RowName, type Rows } from './relay/report.js';
import { startRawSplice, startRelayStack, type BenchProcess } from './relay/stack.js';

const USAGE = `Usage: node dist/bench/relay.js [--quick] [--profile] [--rendezvous-node-flags="<flags>"]

  --quick     1 download per row instead of 3, 20 x 16 MiB instead of 20 x 64 MiB (~30 s; env BENCH_RELAY_QUICK=1)
  --profile   run the rendezvous under node --cpu-prof and print where its time went; figures are then
              not written to bench/results/relay.json (the profiler slows the relay)
  --rendezvous-node-flags="<flags>"
              node flags for the rendezvous process instead of the ones install-service gives it
              (${serviceNodeFlags('rendezvous').join(' ')}), e.g. "--single-threaded-gc", or "none"
              (see bench/README.md); recorded in the results file
  -h, --help  this help`;

interface Settings {
  mode: 'full' | 'quick';
  downloads: number;
  streams: number;
  bytesEach: number;
  warmUpBytes: number;
  /** Idle work connections the agent keeps on the rendezvous (relayPool; the default is 2). */
  pool: number;
  deadlineMs: number;
}

const SETTINGS: Record<Settings['mode'], Settings> = {
  full: { mode: 'full', downloads: 3, streams: 20, bytesEach: 64 * MIB, warmUpBytes: 64 * MIB, pool: 2, deadlineMs: 5 * 60_000 },
  quick: { mode: 'quick', downloads: 1, streams: 20, bytesEach: 16 * MIB, warmUpBytes: 32 * MIB, pool: 2, deadlineMs: 2 * 60_000 },
};

const RESULTS_FILE = join(REPO_ROOT, 'bench/results/relay.json');
const CACHE_DIR = join(tmpdir(), 'homeport-bench');
const PATHS: Record<RowName, string> = {
  direct: 'curl -> agent port (TLS ends at the agent) -> nginx',
  relay: 'curl -> rendezvous relay port -> work connection (PROXY v2 header) -> agent -> nginx',
  'raw-splice': 'curl -> raw-splice.js (accept, net.connect, pipe both ways) -> agent port -> nginx',
};

/** The run folder, removed on any exit unless kept for a failed row or a profile. */
let runDir: string | undefined;

function log(name: string, message: string): void {
  console.log(`${name.padEnd(10)} ${message}`);
}

interface Options {
  profile: boolean;
  rendezvousNodeFlags: string[];
}

async function measureRows(ctx: RunContext, settings: Settings, options: Options): Promise<{ rows: Rows; profile?: { file: string; entries: ProfileEntry[] } }> {
  const upstream = await startUpstream(ctx);
  const started: BenchProcess[] = [];
  const rows: Rows = {};
  let profileDir: string | undefined;
  try {
    const stack = await startRelayStack(ctx, upstream.port, { pool: settings.pool, ...options });
    started.push(stack.agent, stack.rendezvous);
    profileDir = stack.profileDir;
    const splice = await startRawSplice(ctx, stack.agent.port);
    started.push(splice);
    const base = { caFile: ctx.cert.certFile, agentPid: stack.agent.pid };
    const paths: Record<RowName, Path> = {
      direct: { ...base, url: `https://127.0.0.1:${stack.agent.port}` },
      relay: { ...base, url: `https://127.0.0.1:${stack.relayPort}`, relayPid: stack.rendezvous.pid },
      'raw-splice': { ...base, url: `https://127.0.0.1:${splice.port}`, relayPid: splice.pid },
    };
    for (const name of ROW_NAMES) {
      try {
        await warmUp(paths[name], settings.warmUpBytes);
        rows[name] = { path: PATHS[name], ...(await measurePath(paths[name], settings)) };
        const { single, parallel } = rows[name]!;
        const relayCpu = single!.relayCpu ? `, relaying ${single!.relayCpu.total.toFixed(2)} CPU s/GiB` : '';
        log(name, `1 GiB: ${single!.runsMBps.map((mbps) => mbps.toFixed(0)).join(', ')} MB/s${relayCpu}, agent ${single!.agentCpu.total.toFixed(2)} CPU s/GiB`);
        log(name, `${parallel!.streams} streams: ${parallel!.mbps.toFixed(0)} MB/s together`);
      } catch (error) {
        rows[name] = { path: PATHS[name], error: (error as Error).message };
        log(name, `FAILED: ${rows[name]!.error}`);
      }
    }
  } finally {
    for (const process of started) await process.stop();
    await upstream.stop();
  }
  const summary = profileDir ? await readProfileSummary(profileDir, 15) : undefined;
  return { rows, ...(summary ? { profile: summary } : {}) };
}

async function versions(): Promise<Record<string, string>> {
  const curl = await runCommand('curl', ['--version'], 5000);
  const nginx = await runCommand('nginx', ['-v'], 5000);
  return {
    node: process.version,
    curl: /^curl (\S+)/.exec(curl.stdout)?.[1] ?? 'not found',
    nginx: /nginx\/(\S+)/.exec(nginx.stderr)?.[1] ?? 'not found',
  };
}

function method(settings: Settings, options: Options): Record<string, string> {
  return {
    units: 'MB = 2^20 bytes; CPU = user + system seconds of one process (from /proc/<pid>/stat) per GiB passed',
    singleStream: `${settings.downloads} x curl --http1.1 of the ${BIG_FILE.bytes}-byte random file one after the other, median of curl's speed_download; CPU read around all of them`,
    parallel: `${settings.streams} curl processes at once, each a distinct ${settings.bytesEach / MIB} MiB range of the file (HTTP 206), all bytes / wall time of the lot`,
    warmUp: `one ${settings.warmUpBytes / MIB} MiB range download per row before its figures`,
    setup: `one agent (tls.mode "files", log level info), one rendezvous (relayPool ${settings.pool}, relayRate unlimited), nginx upstream with sendfile; same processes for every row`,
    rendezvousNodeFlags: options.rendezvousNodeFlags.join(' ') || 'none',
    relayingCpu: 'relay: the rendezvous process; raw-splice: the splice process; direct: none',
  };
}

async function run(settings: Settings, options: Options): Promise<number> {
  const { profile } = options;
  const date = new Date().toISOString();
  const loadBefore = loadavg()[0]!;
  await ensureStaticFiles(join(CACHE_DIR, 'files'));
  runDir = await mkdtemp(join(CACHE_DIR, 'relay-'));
  const ctx: RunContext = { runDir, filesDir: join(CACHE_DIR, 'files'), cert: await createCertificate(runDir) };
  const measured = await measureRows(ctx, settings, options);
  const loadAfter = loadavg()[0]!;
  const targets = evaluateTargets(measured.rows);
  const broken = Object.values(measured.rows).some((row) => row.error) || Object.keys(measured.rows).length < ROW_NAMES.length;

  console.log(`\n${formatRows(measured.rows)}\n\n${formatTargets(targets)}`);
  if (Math.max(loadBefore, loadAfter) > 0.5 * cpus().length) {
    console.log(`note: load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after: other work was running; figures are noisy`);
  }
  if (measured.profile) {
    console.log(`\nrendezvous self time, top ${measured.profile.entries.length} (${measured.profile.file}):`);
    for (const entry of measured.profile.entries) console.log(`${entry.percent.toFixed(1).padStart(6)} %  ${entry.ms.toFixed(0).padStart(7)} ms  ${entry.name}`);
  }
  if (broken || profile) {
    console.log(`\nlogs and configs of this run are kept in ${runDir}`);
    runDir = undefined;
  } else {
    await rm(runDir, { recursive: true, force: true });
  }
  if (profile) {
    console.log('--profile: results not written');
    return broken ? 1 : 0;
  }
  const machine = { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 1024 ** 3), kernel: release(), loadAverage1mBefore: loadBefore, loadAverage1mAfter: loadAfter };
  const file = { date, mode: settings.mode, machine, versions: await versions(), method: method(settings, options), rows: measured.rows, targets };
  const round = (_key: string, value: unknown) => (typeof value === 'number' ? Math.round(value * 1000) / 1000 : value);
  await mkdir(dirname(RESULTS_FILE), { recursive: true });
  await writeFileAtomic(RESULTS_FILE, `${JSON.stringify(file, round, 2)}\n`, 0o644);
  console.log(`wrote ${RESULTS_FILE}`);
  return broken ? 1 : 0;
}

function cleanUp(): void {
  killAllTracked();
  if (runDir) rmSync(runDir, { recursive: true, force: true });
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, profile: { type: 'boolean' }, 'rendezvous-node-flags': { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const settings = SETTINGS[values.quick === true || process.env.BENCH_RELAY_QUICK === '1' ? 'quick' : 'full'];
  process.on('exit', cleanUp);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping every process the relay benchmark started`);
      process.exit(130);
    });
  }
  setTimeout(() => {
    console.error(`relay benchmark: still running after ${settings.deadlineMs / 60_000} min; stopping`);
    process.exit(1);
  }, settings.deadlineMs).unref();
  // by default the rendezvous runs as install-service starts it
  const given = values['rendezvous-node-flags'];
  const rendezvousNodeFlags = given === undefined ? serviceNodeFlags('rendezvous') : given === 'none' ? [] : given.split(/\s+/).filter(Boolean);
  const flags = rendezvousNodeFlags.length > 0 ? `, rendezvous with ${rendezvousNodeFlags.join(' ')}` : '';
  console.log(`relay benchmark (${settings.mode}${values.profile ? ', rendezvous profiled' : ''}${flags}): ${ROW_NAMES.join(', ')} on 127.0.0.1, ${cpus().length} cores`);
  return run(settings, { profile: values.profile === true, rendezvousNodeFlags });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`relay benchmark: ${(error as Error).message}`);
    process.exitCode = 1;
  },
);
