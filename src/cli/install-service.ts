import { realpathSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAgentConfig } from '../config/agent.js';
import { loadRendezvousConfig } from '../config/rendezvous.js';
import {
  dailyTimeFromCron,
  describeService,
  type ServiceDescription,
  type ServiceInputs,
  type ServicePlatform,
  type ServiceProgram,
} from '../service/description.js';
import { renderServiceFiles } from '../service/files.js';
import {
  applyPlan,
  formatCommand,
  planInstall,
  planStatus,
  planUninstall,
  rootedFileSystem,
  systemRunner,
  type CommandRunner,
  type PlanFileSystem,
  type ServicePlan,
} from '../service/installer.js';
import { type Command, EXIT, parseFlags, requireConfigFlag, UsageError } from './command.js';

/** What the service commands touch outside themselves, injected so tests need neither root nor launchctl. */
export interface ServiceCommandEnvironment {
  runner: CommandRunner;
  fs: PlanFileSystem;
  /** Writes --output-dir files; the real file system in production. */
  outputFs: (dir: string) => PlanFileSystem;
  getuid: () => number;
  hostPlatform: ServicePlatform;
  nodePath: string;
  cliPath: string;
  env: NodeJS.ProcessEnv;
  out: (line: string) => void;
  error: (line: string) => void;
}

function hostPlatform(): ServicePlatform {
  return process.platform === 'darwin' ? 'macos' : 'linux';
}

const PROGRAMS: ServiceProgram[] = ['agent', 'rendezvous'];
const PLATFORMS: ServicePlatform[] = ['linux', 'macos'];

const LOG_ROOT: Record<ServicePlatform, string> = { linux: '/var/log', macos: '/Library/Logs' };

const SERVICE_FLAGS = {
  config: { type: 'string', short: 'c' },
  platform: { type: 'string' },
  user: { type: 'string' },
} as const;

function parseProgram(positionals: string[], command: string): ServiceProgram {
  const [program, ...extra] = positionals;
  if (program === undefined) throw new UsageError(`name the program to ${command}: "agent" or "rendezvous"`);
  if (!PROGRAMS.includes(program as ServiceProgram)) throw new UsageError(`unknown program "${program}": use "agent" or "rendezvous"`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}": give one program, "agent" or "rendezvous"`);
  return program as ServiceProgram;
}

function parsePlatform(value: string | undefined, host: ServicePlatform): ServicePlatform {
  if (value === undefined) return host;
  if (!PLATFORMS.includes(value as ServicePlatform)) throw new UsageError(`--platform "${value}": use "linux" or "macos"`);
  return value as ServicePlatform;
}

/** Linux runs the daemon as a system account; macOS as the person who ran sudo (a LaunchDaemon needs a real user). */
function defaultUser(platform: ServicePlatform, env: NodeJS.ProcessEnv): string {
  if (platform === 'linux') return 'homeport';
  return env.SUDO_USER || userInfo().username;
}

/** The parts of the description that come from the program's configuration. */
async function configInputs(program: ServiceProgram, configPath: string): Promise<Pick<ServiceInputs, 'stateDirectory' | 'listenPorts' | 'reregisterCalendar'>> {
  if (program === 'rendezvous') {
    const { rendezvous } = await loadRendezvousConfig(configPath);
    return { stateDirectory: rendezvous.stateDir, listenPorts: [rendezvous.control.port, rendezvous.http.port] };
  }
  const config = await loadAgentConfig(configPath);
  const calendar = config.rendezvous && dailyTimeFromCron(config.rendezvous.reregister);
  return { stateDirectory: config.agent.stateDir, listenPorts: [config.agent.listen.port], ...(calendar && { reregisterCalendar: calendar }) };
}

interface ServiceRequest {
  description: ServiceDescription;
  values: Record<string, string | boolean | undefined>;
}

/** Parses the common flags and builds the description; undefined after printing --help. */
async function serviceRequest(
  command: Command,
  argv: string[],
  extraFlags: Record<string, { type: 'boolean' | 'string' }>,
  env: ServiceCommandEnvironment,
): Promise<ServiceRequest | undefined> {
  const { values, positionals } = parseFlags(argv, { ...SERVICE_FLAGS, ...extraFlags }, true);
  if (values.help) {
    env.out(command.help);
    return undefined;
  }
  const program = parseProgram(positionals, command.name);
  const platform = parsePlatform(values.platform as string | undefined, env.hostPlatform);
  const configPath = path.resolve(requireConfigFlag(values.config as string | undefined));
  const described = describeService({
    program,
    platform,
    nodePath: env.nodePath,
    cliPath: env.cliPath,
    configPath,
    user: (values.user as string | undefined) ?? defaultUser(platform, env.env),
    logDirectory: path.posix.join(LOG_ROOT[platform], `homeport-${program}`),
    ...(await configInputs(program, configPath)),
  });
  if (!described.ok) throw new UsageError(described.error.split('\n').join('; '));
  return { description: described.value, values };
}

function printPlan(plan: ServicePlan, out: (line: string) => void): void {
  for (const argv of plan.stop) out(`would run: ${formatCommand(argv)}`);
  for (const filePath of plan.remove) out(`would remove: ${filePath}`);
  for (const file of plan.files) {
    out(`would write: ${file.path} (mode ${file.mode.toString(8).padStart(4, '0')}${file.owner ? `, owner ${file.owner.uid}:${file.owner.gid}` : ''})`);
    out(file.content.trimEnd());
    out('');
  }
  for (const argv of plan.commands) out(`would run: ${formatCommand(argv)}`);
  for (const note of plan.notes) out(`note: ${note}`);
}

/** Refuses to change the running system for another platform's files or without root; a message, or undefined. */
function applyRefusal(name: string, d: ServiceDescription, env: ServiceCommandEnvironment): string | undefined {
  if (d.platform !== env.hostPlatform) {
    return `${name}: --platform ${d.platform} differs from this system (${env.hostPlatform}): add --print or --output-dir to only render the files`;
  }
  if (env.getuid() !== 0) return `${name} needs root: run it with sudo`;
  return undefined;
}

async function applyAndReport(name: string, plan: ServicePlan, env: ServiceCommandEnvironment): Promise<number> {
  const result = await applyPlan(plan, { runner: env.runner, fs: env.fs, log: env.out });
  if (!result.ok) {
    env.error(`homeport ${name}: ${result.error}`);
    return EXIT.failure;
  }
  for (const note of plan.notes) env.out(`note: ${note}`);
  return EXIT.ok;
}

async function writeOutputDir(dir: string, d: ServiceDescription, env: ServiceCommandEnvironment): Promise<number> {
  const target = env.outputFs(path.resolve(dir));
  for (const file of renderServiceFiles(d)) {
    await target.write({ path: file.name, content: file.content, mode: 0o644 });
    env.out(`wrote ${path.join(path.resolve(dir), file.name)}`);
  }
  return EXIT.ok;
}

const COMMON_OPTIONS = `  -c, --config <file>      the program's configuration
  --platform linux|macos   default: this system
  --user <name>            the account the service runs as (default: "homeport" on Linux, the sudo user on macOS)
  -h, --help               show this help`;

export function createServiceCommands(env: ServiceCommandEnvironment): { install: Command; uninstall: Command; status: Command } {
  const install: Command = {
    name: 'install-service',
    summary: 'install the agent or rendezvous as a systemd service or LaunchDaemon',
    help: `Usage: homeport install-service agent|rendezvous --config <file> [--platform linux|macos] [--print] [--output-dir DIR] [--user NAME]

Writes the systemd units (/etc/systemd/system) or LaunchDaemon plists (/Library/LaunchDaemons) for the
program, with the daily re-register backstop for an agent, and starts them. Needs root.

Options:
${COMMON_OPTIONS}
  --print                  write nothing: show every file and every command it would run
  --output-dir <dir>       only write the files into <dir> (no root needed, nothing started)

Exit codes: 0 installed, 1 a step failed, 2 usage or config error.`,
    async run(argv) {
      const request = await serviceRequest(this, argv, { print: { type: 'boolean' }, 'output-dir': { type: 'string' } }, env);
      if (!request) return EXIT.ok;
      const { description, values } = request;
      if (values.print && values['output-dir'] !== undefined) throw new UsageError('--print and --output-dir exclude each other: give one');
      const plan = planInstall(description);
      if (values.print) {
        printPlan(plan, env.out);
        return EXIT.ok;
      }
      if (typeof values['output-dir'] === 'string') return writeOutputDir(values['output-dir'], description, env);
      return refuseOrApply(this.name, plan, description, env);
    },
  };

  const uninstall: Command = {
    name: 'uninstall-service',
    summary: 'stop and remove what install-service installed',
    help: `Usage: homeport uninstall-service agent|rendezvous --config <file> [--platform linux|macos] [--print] [--user NAME]

Stops the service and its re-register backstop and removes their files. State and logs stay. Needs root.

Options:
${COMMON_OPTIONS}
  --print                  change nothing: show every command and file it would remove

Exit codes: 0 removed, 1 a step failed, 2 usage or config error.`,
    async run(argv) {
      const request = await serviceRequest(this, argv, { print: { type: 'boolean' } }, env);
      if (!request) return EXIT.ok;
      const plan = planUninstall(request.description);
      if (request.values.print) {
        printPlan(plan, env.out);
        return EXIT.ok;
      }
      return refuseOrApply(this.name, plan, request.description, env);
    },
  };

  const status: Command = {
    name: 'service-status',
    summary: 'show whether the agent or rendezvous service is installed and running',
    help: `Usage: homeport service-status agent|rendezvous --config <file> [--platform linux|macos]

Shows which service files are installed and what the service manager says about them.

Options:
${COMMON_OPTIONS}

Exit codes: 0 installed and running, 1 not (fully) installed or not running, 2 usage or config error.`,
    async run(argv) {
      const request = await serviceRequest(this, argv, {}, env);
      if (!request) return EXIT.ok;
      const plan = planStatus(request.description);
      let healthy = true;
      for (const filePath of plan.files) {
        const present = await env.fs.exists(filePath);
        healthy &&= present;
        env.out(`${present ? 'installed' : 'missing  '}  ${filePath}`);
      }
      for (const argv of plan.commands) {
        const outcome = await env.runner(argv);
        healthy &&= outcome.code === 0;
        env.out(`${formatCommand(argv)}: ${outcome.code === 0 ? 'ok' : `exit ${outcome.code}`}${outcome.output ? ` (${outcome.output.split('\n')[0]})` : ''}`);
      }
      return healthy ? EXIT.ok : EXIT.failure;
    },
  };

  return { install, uninstall, status };
}

async function refuseOrApply(name: string, plan: ServicePlan, d: ServiceDescription, env: ServiceCommandEnvironment): Promise<number> {
  const refusal = applyRefusal(name, d, env);
  if (refusal) {
    env.error(refusal);
    return EXIT.usage;
  }
  return applyAndReport(name, plan, env);
}

const systemEnvironment: ServiceCommandEnvironment = {
  runner: systemRunner,
  fs: rootedFileSystem('/'),
  outputFs: rootedFileSystem,
  getuid: () => process.getuid?.() ?? -1,
  hostPlatform: hostPlatform(),
  // A service must name the real binary: a symlink (Homebrew's, a distribution's alternatives) can move.
  nodePath: realpathSync(process.execPath),
  cliPath: fileURLToPath(new URL('./main.js', import.meta.url)),
  env: process.env,
  out: (line) => console.log(line),
  error: (line) => console.error(line),
};

const systemCommands = createServiceCommands(systemEnvironment);
export const installServiceCommand = systemCommands.install;
export const uninstallServiceCommand = systemCommands.uninstall;
export const serviceStatusCommand = systemCommands.status;
