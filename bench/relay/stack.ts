/**
 * The processes of the relay benchmark, on 127.0.0.1 only: a rendezvous with a relay port for one agent,
 * that agent (TLS in front of the nginx upstream, registered with the rendezvous), and the raw-splice
 * baseline in front of the agent's port. Every process goes through bench/proxy/processes.ts, so the
 * exit hook stops them all. Ports are 0 in the configs and read back from each program's first log lines.
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnTracked, stopTracked } from '../proxy/processes.js';
import { HOMEPORT_CLI, REPO_ROOT, renderAgentToml, type RunContext } from '../proxy/servers.js';

const AGENT_NAME = 'bench'; // the name renderAgentToml gives the agent
const SECRET = 'relay-bench-loopback-secret-0123456789';
const RAW_SPLICE_JS = join(REPO_ROOT, 'dist/bench/relay/raw-splice.js');
const START_TIMEOUT_MS = 15_000;

export interface BenchProcess {
  name: string;
  pid: number;
  /** The port users connect to. */
  port: number;
  stop(): Promise<void>;
}

export interface RelayStack {
  rendezvous: BenchProcess;
  /** The agent's own port (the direct path); relayed connections arrive over its work connections. */
  agent: BenchProcess;
  /** The rendezvous's relay port for the agent. */
  relayPort: number;
  /** Kept for --profile: where the rendezvous writes its .cpuprofile when it stops. */
  profileDir?: string;
}

export function renderRendezvousToml(options: { runDir: string; pool: number }): string {
  return [
    '[rendezvous]',
    'control = "127.0.0.1:0"',
    'http = "127.0.0.1:0"',
    `stateDir = ${JSON.stringify(join(options.runDir, 'rendezvous-state'))}`,
    'heartbeat = "1s"',
    '[stun]',
    'listen = "127.0.0.1:0"',
    '[[agent]]',
    `name = "${AGENT_NAME}"`,
    `secret = "${SECRET}"`,
    'relay = "127.0.0.1:0"',
    'mode = "relay"',
    `relayPool = ${options.pool}`,
    '',
  ].join('\n');
}

export function renderRendezvousSection(controlPort: number): string {
  return ['[rendezvous]', `server = "127.0.0.1:${controlPort}"`, `secret = "${SECRET}"`, 'heartbeat = "1s"', ''].join('\n');
}

/** JSON log lines, or {"port":…} lines, printed so far to `file`; lines that are not JSON are skipped. */
function jsonLines(file: string): Record<string, unknown>[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').flatMap((line) => {
    try {
      const value: unknown = JSON.parse(line);
      return typeof value === 'object' && value !== null ? [value as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

/** Starts a program with its output in `<name>.out`, then waits for a line that `ready` accepts. */
async function startLogged<T>(
  ctx: RunContext,
  name: string,
  args: string[],
  ready: (line: Record<string, unknown>) => T | undefined,
): Promise<{ child: ChildProcess; value: T }> {
  const outFile = join(ctx.runDir, `${name}.out`);
  const out = openSync(outFile, 'w');
  let child: ChildProcess;
  try {
    child = spawnTracked(process.execPath, args, { cwd: ctx.runDir, stdio: ['ignore', out, out] });
  } finally {
    closeSync(out);
  }
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    for (const line of jsonLines(outFile)) {
      const value = ready(line);
      if (value !== undefined) return { child, value };
    }
    await sleep(100);
  }
  await stopTracked(child);
  const lastLines = readFileSync(outFile, 'utf8').trim().split('\n').slice(-5).join('\n');
  throw new Error(`${name} did not get ready within ${START_TIMEOUT_MS / 1000} s${lastLines ? `:\n${lastLines}` : ''}`);
}

const asPort = (value: unknown): number | undefined => (typeof value === 'number' && value > 0 ? value : undefined);

function asProcess(name: string, child: ChildProcess, port: number): BenchProcess {
  return { name, pid: child.pid!, port, stop: () => stopTracked(child) };
}

/** Rendezvous first (its control port goes into the agent's config), then the agent, until it has registered. */
export async function startRelayStack(
  ctx: RunContext,
  upstreamPort: number,
  options: { pool: number; profile: boolean; rendezvousNodeFlags: string[] },
): Promise<RelayStack> {
  const rvConfig = join(ctx.runDir, 'rendezvous.toml');
  await writeFile(rvConfig, renderRendezvousToml({ runDir: ctx.runDir, pool: options.pool }));
  const profileDir = options.profile ? join(ctx.runDir, 'profile') : undefined;
  const nodeFlags = [...options.rendezvousNodeFlags, ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [])];
  const rv = await startLogged(ctx, 'rendezvous', [...nodeFlags, HOMEPORT_CLI, 'rendezvous', '--config', rvConfig], (line) => {
    if (line.msg !== 'rendezvous listening') return undefined;
    const relay = asPort((line.relays as Record<string, unknown> | undefined)?.[AGENT_NAME]);
    const control = asPort(line.controlPort);
    return relay && control ? { relay, control } : undefined;
  });
  const rendezvous = asProcess('rendezvous', rv.child, rv.value.relay);
  try {
    const agentConfig = join(ctx.runDir, 'agent.toml');
    const agentToml = renderAgentToml({ runDir: ctx.runDir, port: 0, upstreamPort, cert: ctx.cert });
    await writeFile(agentConfig, `${agentToml}${renderRendezvousSection(rv.value.control)}`);
    let port: number | undefined;
    const agent = await startLogged(ctx, 'agent', [HOMEPORT_CLI, 'agent', '--config', agentConfig], (line) => {
      if (line.msg === 'agent listening' && typeof line.listen === 'string') port = asPort(Number(line.listen.split(':').pop()));
      return line.msg === 'registered with the rendezvous' && port ? port : undefined;
    });
    return { rendezvous, agent: asProcess('agent', agent.child, agent.value), relayPort: rv.value.relay, ...(profileDir ? { profileDir } : {}) };
  } catch (error) {
    await rendezvous.stop();
    throw error;
  }
}

/** The frp-like baseline (raw-splice.js) in front of `targetPort`. */
export async function startRawSplice(ctx: RunContext, targetPort: number): Promise<BenchProcess> {
  const splice = await startLogged(ctx, 'raw-splice', [RAW_SPLICE_JS, '0', String(targetPort)], (line) => asPort(line.port));
  return asProcess('raw-splice', splice.child, splice.value);
}
