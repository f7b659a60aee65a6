import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** The built CLI, as `npx homeport` runs it. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `homeport <args>` to completion. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk; });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface StartCliOptions {
  /** Runs the program under `ulimit -n <fdLimit>` (soft and hard), as a service manager with a low LimitNOFILE would. */
  fdLimit?: number;
}

/** Starts a long-running `homeport <args>` and resolves once a line of its output matches `ready`. */
export function startCli(args: string[], ready: RegExp, timeoutMs = 15_000, options: StartCliOptions = {}): Promise<{ child: ChildProcess; match: RegExpMatchArray; output: () => string }> {
  return new Promise((resolve, reject) => {
    // `exec` keeps the pid: the child is node itself, so rssBytes and /proc/<pid>/fd see the program
    const [command, argv] = options.fdLimit === undefined
      ? [process.execPath, [CLI, ...args]]
      : ['sh', ['-c', `ulimit -n ${options.fdLimit} && exec "$0" "$@"`, process.execPath, CLI, ...args]];
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`not ready after ${timeoutMs} ms:\n${output}`)); }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      output += chunk;
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, match, output: () => output });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`exited with ${code} before ready:\n${output}`)); });
  });
}

/** Stops a child and waits for it, escalating to SIGKILL. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  child.removeAllListeners('exit');
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', (code) => { clearTimeout(timer); resolve(code); });
    child.kill(signal);
  });
}

/** Resident set size of a process in bytes, from /proc (Linux). */
export async function rssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!kib) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kib[1]) * 1024;
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux; the kernel counts in 10 ms ticks). */
export async function cpuTimeMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' '); // the name may hold spaces
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** File descriptors a process holds open, from /proc (Linux). */
export async function openFds(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}
