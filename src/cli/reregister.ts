import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readlink, realpath } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { readStatusFile } from '../agent/status.js';
import { formatAddress } from '../common/address.js';
import { loadAgentConfig } from '../config/agent.js';
import { type Command, EXIT, parseFlags, requireConfigFlag } from './command.js';

/** The running agent re-registers when it gets this signal (SIGUSR1 is Node's debugger switch). */
export const REREGISTER_SIGNAL = 'SIGUSR2';
const WAIT_MS = 20_000;

export const reregisterCommand: Command = {
  name: 'reregister',
  summary: 'make the running agent reconnect to the rendezvous from its punched port now',
  help: `Usage: homeport reregister --config <agent.toml>

Asks the running agent (by signal ${REREGISTER_SIGNAL}; it never punches from a second process) to drop its
control connection and register again from its punched port: a fresh public address and a fresh
reachability check, as the daily job does after the router's reboot. Waits up to ${WAIT_MS / 1000} s
for the agent to report back and prints its public address.

The pid in status.json outlives the agent (a stop, a crash, a reboot) and may since belong to another
program, so it is only signalled when that process is \`homeport agent\` with this --config file (its
command line, from /proc or ps). On macOS start the agent with an absolute --config path (install-service
does) so that ps shows which file it runs with.

Options:
  -c, --config <file>   the agent's configuration (its stateDir holds status.json with the agent's pid)
  -h, --help            show this help

Exit codes: 0 re-registered, 1 the agent is not running or did not re-register in time, 2 usage or config error.`,
  async run(argv) {
    const { values } = parseFlags(argv, { config: { type: 'string', short: 'c' } });
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const config = await loadAgentConfig(requireConfigFlag(values.config));
    if (!config.rendezvous) {
      console.error(`homeport reregister: ${config.file} has no [rendezvous] section: the agent does not register anywhere`);
      return EXIT.usage;
    }
    const file = join(config.agent.stateDir, 'status.json');
    const found = await identifyAgentProcess((await readStatusFile(file))?.pid, config.file);
    const refusal = found.kind === 'agent' ? signal(found.pid) : notRunning(found, config.file, file);
    if (refusal !== undefined || found.kind !== 'agent') {
      console.error(`homeport reregister: ${refusal}`);
      return EXIT.failure;
    }
    const asked = Date.now();
    for (let waited = 0; waited < WAIT_MS; waited += 250) {
      await sleep(250);
      const status = await readStatusFile(file);
      if (status?.connected && status.registeredAt && Date.parse(status.registeredAt) >= asked) {
        console.log(`re-registered: public address ${status.publicAddress ? formatAddress(status.publicAddress) : 'unknown'}`);
        return EXIT.ok;
      }
    }
    console.error(`homeport reregister: the agent (pid ${found.pid}) did not report a new registration within ${WAIT_MS / 1000} s; see its log`);
    return EXIT.failure;
  },
};

/** What the pid in status.json is now. */
export type AgentProcess =
  | { kind: 'agent'; pid: number }
  | { kind: 'gone' }
  | { kind: 'other'; pid: number; program: string }
  | { kind: 'unknown'; pid: number; reason: string };

/** Why nothing was signalled, with the fix. */
function notRunning(found: Exclude<AgentProcess, { kind: 'agent' }>, config: string, file: string): string {
  switch (found.kind) {
    case 'other': return `the agent of ${config} is not running: pid ${found.pid} (from ${file}) now belongs to another program (${found.program}); start the agent first`;
    case 'unknown': return `cannot tell whether pid ${found.pid} (from ${file}) is the agent of ${config}, so it was not signalled: ${found.reason}`;
    case 'gone': return `no running agent found for ${config} (${file} names no live process); start the agent first`;
  }
}

const execFileText = promisify(execFile);
/** Linux's highest pid_max (macOS stays below 100000). */
const MAX_PID = 2 ** 22;

/**
 * Whether `pid` is `homeport agent` running with `configFile`. A signal to anything else could end it:
 * SIGUSR2's default action terminates. Linux: the argv in /proc/<pid>/cmdline, a relative
 * --config taken from the process's own working directory. Without /proc (macOS): `ps`, whose command
 * line is the argv joined by spaces, so only an absolute --config path can be matched. Anything that
 * cannot be read counts as not the agent: better a reregister that does nothing than a killed process.
 */
export async function identifyAgentProcess(pid: unknown, configFile: string, procRoot = '/proc'): Promise<AgentProcess> {
  // status.json is only text: 0 and negative pids would address process groups, -1 every process we may signal
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0 || pid > MAX_PID) return { kind: 'gone' };
  const configs = await pathsOf(resolve(configFile));
  if (!existsSync(join(procRoot, 'self'))) return identifyWithPs(pid, configs);
  const procDir = join(procRoot, String(pid));
  const argv = await readFile(join(procDir, 'cmdline'), 'utf8').then((text) => text.split('\0').filter(Boolean), (error: NodeJS.ErrnoException) => error);
  if (argv instanceof Error) {
    return argv.code === 'ENOENT' ? { kind: 'gone' } : { kind: 'unknown', pid, reason: `${join(procDir, 'cmdline')} cannot be read (${argv.code ?? argv.message}); run reregister as the agent's user or with sudo` };
  }
  const configArgument = agentConfigArgument(argv);
  const other = { kind: 'other', pid, program: basename(argv[0] ?? '') || 'unknown' } as const;
  if (configArgument === undefined) return other;
  const cwd = await readlink(join(procDir, 'cwd')).catch(() => undefined);
  if (cwd === undefined && !configArgument.startsWith('/')) {
    return { kind: 'unknown', pid, reason: `its --config "${configArgument}" is relative and ${join(procDir, 'cwd')} cannot be read; run reregister as the agent's user or with sudo` };
  }
  const theirs = await pathsOf(resolve(cwd ?? '/', configArgument));
  return theirs.some((path) => configs.includes(path)) ? { kind: 'agent', pid } : other;
}

/** The path and, when it differs (a symlink on the way), the real path. */
async function pathsOf(absolute: string): Promise<string[]> {
  const real = await realpath(absolute).catch(() => absolute);
  return [...new Set([absolute, real])];
}

const RELATIVE_CONFIG_FLAG = / (?:--config[= ]|-c ?)[^/ ]/;

async function identifyWithPs(pid: number, configs: string[]): Promise<AgentProcess> {
  // -ww: never cut the command line to the terminal's width
  const text = await execFileText('ps', ['-ww', '-o', 'command=', '-p', String(pid)]).then(({ stdout }) => stdout.trim(), (error: NodeJS.ErrnoException & { stdout?: string }) => error);
  if (typeof text !== 'string') {
    // ps exits 1 with no output for a pid that does not exist
    return typeof text.code === 'number' && !text.stdout?.trim() ? { kind: 'gone' } : { kind: 'unknown', pid, reason: `ps failed: ${text.message.split('\n')[0]}` };
  }
  if (text === '') return { kind: 'gone' };
  if (commandTextNamesConfig(text, configs)) return { kind: 'agent', pid };
  if (RELATIVE_CONFIG_FLAG.test(text) && text.includes(' agent ')) {
    return { kind: 'unknown', pid, reason: 'ps shows its --config as a relative path, which says nothing without its working directory; start the agent with an absolute --config path' };
  }
  return { kind: 'other', pid, program: basename(text.split(' ')[0]!) };
}

/** The --config value of an `agent` command line, in every spelling parseArgs accepts; undefined for any other. */
export function agentConfigArgument(argv: readonly string[]): string | undefined {
  if (!argv.includes('agent')) return undefined;
  const options = argv.slice(argv.indexOf('agent') + 1);
  for (const [index, word] of options.entries()) {
    if (word === '--config' || word === '-c') return options[index + 1];
    if (word.startsWith('--config=')) return word.slice('--config='.length);
    if (/^-c./.test(word)) return word.slice(2);
  }
  return undefined;
}

/** Whether a command line as ps shows it (argv joined by spaces) runs `agent` with one of `configs` as a whole argument. */
export function commandTextNamesConfig(text: string, configs: readonly string[]): boolean {
  const padded = ` ${text} `;
  if (!padded.includes(' agent ')) return false;
  return configs.some((config) => ['--config ', '--config=', '-c '].some((flag) => padded.includes(` ${flag}${config} `)));
}

/** Signals the agent; undefined when sent, else why not. */
function signal(pid: number): string | undefined {
  try {
    process.kill(pid, REREGISTER_SIGNAL);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EPERM') return `the agent (pid ${pid}) runs as another user; run reregister as that user or with sudo`;
    return `the agent (pid ${pid}) stopped just now (${code}); start it first`;
  }
}
