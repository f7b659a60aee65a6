/**
 * Process control for the benchmark: every process it starts goes through here, in its own process
 * group, so that one call (or the exit hook, even after an error or Ctrl-C) stops all of them and their
 * children (nginx workers). Also reads a process tree's CPU time and memory from /proc.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { countEstablished, parseProcStat, parseVmRssBytes } from './measure.js';

const running = new Set<ChildProcess>();

/** Starts a process in its own process group and remembers it until it exits. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const child = spawn(command, args, { ...options, detached: true });
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.once('error', () => running.delete(child));
  return child;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGTERM to the process group, SIGKILL if it is still there after `graceMs`. */
export async function stopTracked(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (!hasExited(child)) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    signalGroup(child, 'SIGTERM');
    await Promise.race([exited, sleep(graceMs)]);
  }
  // Also after a clean exit of the leader: a worker it left behind is still in the group.
  signalGroup(child, 'SIGKILL');
  running.delete(child);
}

/** Synchronous, for the exit hook: kill every group still running. */
export function killAllTracked(): void {
  for (const child of running) signalGroup(child, 'SIGKILL');
  running.clear();
}

export interface CommandOutput {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a client to completion, killed after `timeoutMs` so no run can hang the benchmark. */
export async function runCommand(command: string, args: string[], timeoutMs: number): Promise<CommandOutput> {
  const child = spawnTracked(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => {
    child.once('error', (error) => {
      stderr += error.message;
      resolve(null);
    });
    child.once('close', (exitCode) => resolve(exitCode));
  });
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** A loopback port that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits until the server accepts TCP connections; an error if it exits or takes longer than `timeoutMs`. */
export async function waitForPort(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (hasExited(child)) throw new Error(`exited with ${child.exitCode ?? child.signalCode} before listening on ${port}`);
    if (await accepts(port)) return;
    await sleep(100);
  }
  throw new Error(`did not listen on 127.0.0.1:${port} within ${timeoutMs / 1000} s`);
}

function readProcFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // the process exited between listing and reading
  }
}

/** `rootPid` and all its descendants (nginx master and workers), from the ppid links in /proc. */
export function processTree(rootPid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = parseProcStat(readProcFile(`/proc/${entry}/stat`) ?? '');
    if (stat.ok) children.set(stat.value.ppid, [...(children.get(stat.value.ppid) ?? []), stat.value.pid]);
  }
  const tree = [rootPid];
  for (let index = 0; index < tree.length; index += 1) tree.push(...(children.get(tree[index]!) ?? []));
  return tree;
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ, fixed at 100 by the Linux ABI on x86 and Arm

/** User + system CPU seconds used so far by the process tree (all threads of every process). */
export function treeCpuSeconds(rootPid: number): number {
  let ticks = 0;
  for (const pid of processTree(rootPid)) {
    const stat = parseProcStat(readProcFile(`/proc/${pid}/stat`) ?? '');
    if (stat.ok) ticks += stat.value.cpuTicks;
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** Sum of VmRSS over the process tree, in bytes (pages shared by nginx master and workers count twice). */
export function treeRssBytes(rootPid: number): number {
  return processTree(rootPid).reduce((sum, pid) => sum + parseVmRssBytes(readProcFile(`/proc/${pid}/status`) ?? ''), 0);
}

/** Established client connections on a loopback listening port. */
export function establishedOn(port: number): number {
  return countEstablished(readProcFile('/proc/net/tcp') ?? '', port) + countEstablished(readProcFile('/proc/net/tcp6') ?? '', port);
}
