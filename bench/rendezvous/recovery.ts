/**
 * The recovery half of the rendezvous benchmark, in the NAT lab (test/netlab/): the agent behind a
 * full-cone home router with the default 5 s heartbeat, the rendezvous with its default check interval,
 * a user in the remote namespace. Five times the home router "reboots" (alternately a new port
 * allocation and a new WAN address) at a random point of the heartbeat cycle, and the clock runs from
 * the change until `/go/home/...` answers 302 to a new address from which a download actually works.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { labAvailability, startLab, type Lab, type LabChild } from '../../test/netlab/lab.js';
import { homeport, startMedia, waitForOutput, writeLabConfigs, type LabSetup } from '../../test/netlab/homeport.js';

const HEARTBEAT_MS = 5_000;
const RUN_TIMEOUT_MS = 20_000;
/** New WAN addresses the runs move to; the agent's certificate names all of them. */
const WAN_ADDRESSES = ['198.51.100.3', '198.51.100.4'];
const MOVIE = randomBytes(1024 * 1024);
const MOVIE_SHA = createHash('sha256').update(MOVIE).digest('hex');

/** ms after the change, from the programs' own log lines; absent when the line was not found. */
export interface RecoveryBreakdown {
  /** The agent noticed its control connection was dead (the RST on its next ping). */
  agentNoticedMs?: number;
  /** The agent's new registration completed (welcome received). */
  agentRegisteredMs?: number;
  /** The rendezvous registered the new address (the redirect points there from now on). */
  rendezvousRegisteredMs?: number;
  /** The rendezvous's check of the new address said reachable. */
  reachableMs?: number;
}

export interface RecoveryRun {
  change: string;
  /** From the change until the 302 to the new, working address came back; undefined when it never did. */
  recoveredMs?: number;
  location?: string;
  downloadOk: boolean;
  /** Where the time went, from the agent's and the rendezvous's logs. */
  breakdown: RecoveryBreakdown;
}

export interface RecoveryResult {
  heartbeatMs: number;
  runs: RecoveryRun[];
  medianMs: number;
  maxMs: number;
}

type Log = (message: string) => void;

interface Programs {
  setup: LabSetup;
  rendezvous: LabChild;
  agent: LabChild;
  url: string;
}

/** Starts the media server, the rendezvous and the agent; the folders it makes are added to `folders`. */
async function startPrograms(lab: Lab, folders: string[]): Promise<Programs> {
  const movieDir = await mkdtemp(join(tmpdir(), 'hp-bench-recovery-'));
  folders.push(movieDir);
  const moviePath = join(movieDir, 'movie.bin');
  await writeFile(moviePath, MOVIE);
  const mediaPort = await startMedia(lab, moviePath);
  const setup = await writeLabConfigs(lab, mediaPort, { allow: [`${lab.addresses.remoteRouterWan.split('.').slice(0, 3).join('.')}.0/24`], heartbeat: `${HEARTBEAT_MS / 1000}s` });
  folders.push(setup.dir);
  // the lab's configs check every 2 s; the benchmark measures the rendezvous as shipped (30 s, 5 s)
  const config = await readFile(setup.rendezvousConfig, 'utf8');
  await writeFile(setup.rendezvousConfig, config.replace(/^probe(Interval|Timeout) = .*\n/gm, ''));
  const rendezvous = homeport(lab, 'wan', ['rendezvous', '--config', setup.rendezvousConfig]);
  await waitForOutput(rendezvous, /listening/);
  const agent = homeport(lab, 'home', ['agent', '--config', setup.agentConfig]);
  await waitForOutput(agent, /registered with the rendezvous/);
  const cas = await Promise.all(['rv-certs', 'agent-certs'].map((dir) => readFile(join(setup.dir, dir, 'ca.pem'), 'utf8')));
  await writeFile(setup.bundle, cas.join(''));
  return { setup, rendezvous, agent, url: `https://${lab.addresses.rendezvous}:8443/go/home/movie.bin` };
}

interface Answer {
  code: string;
  location: string;
}

/** One request from the remote user's namespace; `download` fetches the body into a file too. */
async function curl(lab: Lab, setup: LabSetup, url: string, output = '/dev/null'): Promise<Answer> {
  const args = ['curl', '-sS', '--cacert', setup.bundle, '--max-time', '3', '-o', output, '-w', '%{http_code} %{redirect_url}', url];
  const { stdout } = await lab.exec('remote', args).catch(() => ({ stdout: 'failed' }));
  const [code = '', location = ''] = stdout.trim().split(' ');
  return { code, location };
}

async function downloads(lab: Lab, setup: LabSetup, location: string): Promise<boolean> {
  const file = join(setup.dir, `download-${randomBytes(4).toString('hex')}.bin`);
  const answer = await curl(lab, setup, location, file);
  const body = await readFile(file).catch(() => Buffer.alloc(0));
  return answer.code === '200' && createHash('sha256').update(body).digest('hex') === MOVIE_SHA;
}

/** Waits for the redirect to point somewhere other than `before` and for a download from there to work. */
async function awaitRecovery(lab: Lab, programs: Programs, before: string, changedAt: number): Promise<Omit<RecoveryRun, 'change' | 'breakdown'>> {
  let last: Omit<RecoveryRun, 'change' | 'breakdown'> = { downloadOk: false };
  while (Date.now() - changedAt < RUN_TIMEOUT_MS) {
    const answer = await curl(lab, programs.setup, programs.url);
    const answeredAt = Date.now();
    if (answer.code === '302' && answer.location !== before) {
      last = { location: answer.location, downloadOk: await downloads(lab, programs.setup, answer.location) };
      if (last.downloadOk) return { ...last, recoveredMs: answeredAt - changedAt };
    }
    await sleep(50);
  }
  return last;
}

interface LogLine {
  time: number;
  msg: string;
  reachable?: boolean;
}

/** The JSON log lines still in a child's captured output (its last 64 KiB: recent enough for one run). */
function logLines(child: LabChild): LogLine[] {
  return child.output().split('\n').flatMap((line) => {
    try {
      const parsed = JSON.parse(line) as { time?: string; msg?: string; reachable?: boolean; state?: string };
      return [{ time: Date.parse(parsed.time ?? ''), msg: parsed.msg ?? '', reachable: parsed.reachable ?? (parsed.state === undefined ? undefined : parsed.state === 'reachable') }];
    } catch {
      return [];
    }
  });
}

function msAfter(lines: LogLine[], changedAt: number, matches: (line: LogLine) => boolean): number | undefined {
  const line = lines.find((candidate) => candidate.time >= changedAt && matches(candidate));
  return line === undefined ? undefined : line.time - changedAt;
}

function breakdown(programs: Programs, changedAt: number): RecoveryBreakdown {
  const agent = logLines(programs.agent);
  const rendezvous = logLines(programs.rendezvous);
  const parts: RecoveryBreakdown = {
    agentNoticedMs: msAfter(agent, changedAt, (line) => line.msg === 'control connection ended'),
    agentRegisteredMs: msAfter(agent, changedAt, (line) => line.msg === 'registered with the rendezvous'),
    rendezvousRegisteredMs: msAfter(rendezvous, changedAt, (line) => line.msg === 'agent registered'),
    reachableMs: msAfter(rendezvous, changedAt, (line) => /^home is reachable/.test(line.msg)),
  };
  return Object.fromEntries(Object.entries(parts).filter(([, value]) => value !== undefined)) as RecoveryBreakdown;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Runs the five router reboots; the lab is torn down before it returns or throws. */
export async function measureRecovery(runs: number, log: Log): Promise<RecoveryResult | { skipped: string }> {
  const available = labAvailability();
  if (!available.ok) return { skipped: `NAT lab unavailable: ${available.reason}` };
  const lab = await startLab({ home: 'fc', remote: 'prc' });
  const folders: string[] = [];
  try {
    const programs = await startPrograms(lab, folders);
    const results: RecoveryRun[] = [];
    for (let index = 0; index < runs; index++) {
      const before = await awaitRecovery(lab, programs, '', Date.now());
      if (!before.downloadOk) throw new Error(`no working redirect before run ${index + 1}`);
      // a random point in the heartbeat cycle: the agent only learns of the change at its next ping
      await sleep(Math.random() * HEARTBEAT_MS);
      const newWanAddress = index % 2 === 1 ? WAN_ADDRESSES[(index >> 1) % WAN_ADDRESSES.length] : undefined;
      const change = newWanAddress ? `new WAN address ${newWanAddress}` : 'new port allocation';
      const changedAt = Date.now();
      await lab.rebootRouter('home-router', newWanAddress ? { newWanAddress } : {});
      const recovered = await awaitRecovery(lab, programs, before.location!, changedAt);
      await sleep(200); // the log lines of the recovery reach the output
      const run = { change, ...recovered, breakdown: breakdown(programs, changedAt) };
      results.push(run);
      log(`run ${index + 1}: ${change}: ${run.recoveredMs === undefined ? 'NOT recovered' : `${run.recoveredMs} ms`} → ${run.location ?? '-'} ${JSON.stringify(run.breakdown)}`);
    }
    const times = results.map((run) => run.recoveredMs ?? Infinity);
    return { heartbeatMs: HEARTBEAT_MS, runs: results, medianMs: median(times), maxMs: Math.max(...times) };
  } finally {
    await lab.down();
    await Promise.all(folders.map((folder) => rm(folder, { recursive: true, force: true })));
  }
}
