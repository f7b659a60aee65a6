import { realpathSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAgentConfig } from '../config/agent.js';
import { loadRendezvousConfig } from '../config/rendezvous.js';
import {
  dailyTimeFromCron,
  describeService,
  mayHaveReregisterJob,
  serviceIdentity,
  type ServiceDescription,
  type ServiceInputs,
  type ServicePlatform,
  type ServiceProgram,
} from '../service/description.js';
import { renderServiceFiles, reregisterJobPaths } from '../service/files.js';
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
import { checkNasLaunch, detectNas, fileMarkerProbe, NAS_SYSTEMS, renderNasGuide, type MarkerProbe, type NasSystem } from '../service/nas.js';
import { chooseNodeBinary, type NodeBinaryChoice } from '../service/node-binary.js';
import { type Command, EXIT, parseFlags, requireConfigFlag, UsageError } from './command.js';

/** What the service commands touch outside themselves, injected so tests need neither root nor launchctl. */
export interface ServiceCommandEnvironment {
  runner: CommandRunner;
  fs: PlanFileSystem;
  /** Writes --output-dir files; the real file system in production. */
  outputFs: (dir: string) => PlanFileSystem;
  getuid: () => number;
  hostPlatform: ServicePlatform;
  node: NodeBinaryChoice;
  cliPath: string;
  env: NodeJS.ProcessEnv;
  /** Looks for the marker files of NAS systems. */
  probe: MarkerProbe;
  out: (line: string) => void;
  error: (line: string) => void;
}

function hostPlatform(): ServicePlatform {
  return process.platform === 'darwin' ? 'macos' : 'linux';
}

const PROGRAMS: ServiceProgram[] = ['agent', 'rendezvous'];
const PLATFORMS: ServicePlatform[] = ['linux', 'macos'];

const LOG_ROOT: Record<ServicePlatform, string> = { linux: '/var/log', macos: '/Library/Logs' };

function logDirectory(platform: ServicePlatform, program: ServiceProgram): string {
  return path.posix.join(LOG_ROOT[platform], `homeport-${program}`);
}

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

function parseNas(value: string | undefined): NasSystem | undefined {
  if (value === undefined) return undefined;
  if (!NAS_SYSTEMS.includes(value as NasSystem)) throw new UsageError(`--nas "${value}": use ${NAS_SYSTEMS.map((s) => `"${s}"`).join(', ')}`);
  return value as NasSystem;
}

/** Linux runs the daemon as a system account; macOS as the person who ran sudo (a LaunchDaemon needs a real user). */
function defaultUser(platform: ServicePlatform, env: NodeJS.ProcessEnv): string {
  if (platform === 'linux') return 'homeport';
  return env.SUDO_USER || userInfo().username;
}

type ConfigInputs = Pick<ServiceInputs, 'stateDirectory' | 'listenPorts' | 'reregisterCalendar'>;

/** The parts of the description that come from the program's configuration. */
async function configInputs(program: ServiceProgram, configPath: string): Promise<ConfigInputs> {
  if (program === 'rendezvous') {
    const { rendezvous } = await loadRendezvousConfig(configPath);
    // acmeHttp is port 80 in practice: the unit must grant the capability to bind it
    const acmePort = rendezvous.acmeHttp?.port;
    return { stateDirectory: rendezvous.stateDir, listenPorts: [rendezvous.control.port, rendezvous.http.port, ...(acmePort ? [acmePort] : [])] };
  }
  const config = await loadAgentConfig(configPath);
  const calendar = config.rendezvous && dailyTimeFromCron(config.rendezvous.reregister);
  // [admin] listen may be port 0 (any free port), which needs no capability
  const adminPort = config.admin?.listen.port;
  return {
    stateDirectory: config.agent.stateDir,
    listenPorts: [config.agent.listen.port, ...(adminPort ? [adminPort] : [])],
    ...(calendar && { reregisterCalendar: calendar }),
  };
}

type FlagValues = Record<string, string | boolean | undefined>;

interface ServiceRequest {
  program: ServiceProgram;
  platform: ServicePlatform;
  user: string;
  values: FlagValues;
}

/** Parses the common flags; undefined after printing --help. */
function serviceRequest(
  command: Command,
  argv: string[],
  extraFlags: Record<string, { type: 'boolean' | 'string' }>,
  env: ServiceCommandEnvironment,
): ServiceRequest | undefined {
  const { values, positionals } = parseFlags(argv, { ...SERVICE_FLAGS, ...extraFlags }, true);
  if (values.help) {
    env.out(command.help);
    return undefined;
  }
  const program = parseProgram(positionals, command.name);
  const platform = parsePlatform(values.platform as string | undefined, env.hostPlatform);
  const user = (values.user as string | undefined) ?? defaultUser(platform, env.env);
  return { program, platform, user, values };
}

function configPathOf(values: FlagValues): string {
  return path.resolve(requireConfigFlag(values.config as string | undefined));
}

/** The full description install-service renders, from the flags and the program's config. */
function describeRequest(request: ServiceRequest, configPath: string, fromConfig: ConfigInputs, env: ServiceCommandEnvironment): ServiceDescription {
  const described = describeService({
    program: request.program,
    platform: request.platform,
    nodePath: env.node.path,
    cliPath: env.cliPath,
    configPath,
    user: request.user,
    logDirectory: logDirectory(request.platform, request.program),
    ...fromConfig,
  });
  if (!described.ok) throw new UsageError(described.error.split('\n').join('; '));
  return described.value;
}

/**
 * The NAS whose steps install-service prints instead of installing: the one --nas names, or the one this
 * machine is when it installs for itself on Linux (rendering files with --output-dir is left alone).
 */
function nasTarget(request: ServiceRequest, env: ServiceCommandEnvironment): NasSystem | undefined {
  const forced = parseNas(request.values.nas as string | undefined);
  if (forced) {
    if (request.values.platform !== undefined) throw new UsageError('--nas and --platform exclude each other: a NAS gets steps, not service files');
    if (request.values['output-dir'] !== undefined) throw new UsageError('--nas and --output-dir exclude each other: a NAS gets steps, not service files');
    return forced;
  }
  if (request.platform !== 'linux' || env.hostPlatform !== 'linux' || request.values['output-dir'] !== undefined) return undefined;
  return detectNas(env.probe)?.system;
}

function printNasGuide(system: NasSystem, request: ServiceRequest, configPath: string, fromConfig: ConfigInputs, env: ServiceCommandEnvironment): number {
  const launch = checkNasLaunch({ program: request.program, nodePath: env.node.path, cliPath: env.cliPath, configPath, stateDirectory: fromConfig.stateDirectory });
  if (!launch.ok) throw new UsageError(launch.error.split('\n').join('; '));
  for (const line of renderNasGuide(system, launch.value, detectNas(env.probe))) env.out(line);
  return EXIT.ok;
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
function applyRefusal(name: string, platform: ServicePlatform, env: ServiceCommandEnvironment): string | undefined {
  if (platform !== env.hostPlatform) {
    return `${name}: --platform ${platform} differs from this system (${env.hostPlatform}): add --print or --output-dir to only render the files`;
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

/** Prints the plan (--print) or applies it when this system and this user may. */
async function printOrApply(name: string, plan: ServicePlan, request: ServiceRequest, env: ServiceCommandEnvironment): Promise<number> {
  if (request.values.print) {
    printPlan(plan, env.out);
    return EXIT.ok;
  }
  const refusal = applyRefusal(name, request.platform, env);
  if (refusal) {
    env.error(refusal);
    return EXIT.usage;
  }
  return applyAndReport(name, plan, env);
}

async function writeOutputDir(dir: string, d: ServiceDescription, env: ServiceCommandEnvironment): Promise<number> {
  const target = env.outputFs(path.resolve(dir));
  for (const file of renderServiceFiles(d)) {
    await target.write({ path: file.name, content: file.content, mode: 0o644 });
    env.out(`wrote ${path.join(path.resolve(dir), file.name)}`);
  }
  return EXIT.ok;
}

/** The config of uninstall-service and service-status: optional, it only adds the state directory and the backstop's presence. */
async function optionalConfig(request: ServiceRequest): Promise<ConfigInputs | undefined> {
  return request.values.config === undefined ? undefined : configInputs(request.program, configPathOf(request.values));
}

async function anyExists(paths: string[], fs: PlanFileSystem): Promise<boolean> {
  const found = await Promise.all(paths.map((filePath) => fs.exists(filePath)));
  return found.includes(true);
}

async function reportStatus(request: ServiceRequest, env: ServiceCommandEnvironment): Promise<number> {
  const id = serviceIdentity(request.program, request.platform);
  const fromConfig = await optionalConfig(request);
  // Without a config, the backstop is checked when its files are there (an agent may run without one).
  const withBackstop = fromConfig ? fromConfig.reregisterCalendar !== undefined : await anyExists(reregisterJobPaths(id), env.fs);
  const plan = planStatus(id, mayHaveReregisterJob(id) && withBackstop);
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
}

const COMMON_OPTIONS = `  --platform linux|macos   default: this system
  --user <name>            the account the service runs as (default: "homeport" on Linux, the sudo user on macOS)`;
const HELP_OPTION = '  -h, --help               show this help';

export function createServiceCommands(env: ServiceCommandEnvironment): { install: Command; uninstall: Command; status: Command } {
  return { install: installCommand(env), uninstall: uninstallCommand(env), status: statusCommand(env) };
}

function installCommand(env: ServiceCommandEnvironment): Command {
  return {
    name: 'install-service',
    summary: 'install the agent or rendezvous as a systemd service or LaunchDaemon',
    help: `Usage: homeport install-service agent|rendezvous --config <file> [--platform linux|macos] [--print] [--output-dir DIR] [--user NAME] [--nas SYSTEM]

Writes the systemd units (/etc/systemd/system) or the LaunchDaemon plists (/Library/LaunchDaemons) and
log rotation entry (/etc/newsyslog.d) for the program, with the daily re-register backstop for an agent,
and starts them. Needs root. On a NAS (Synology DSM, QNAP QTS, Unraid, TrueNAS SCALE) it installs
nothing and prints that system's steps to start the program at boot.

Options:
  -c, --config <file>      the program's configuration
${COMMON_OPTIONS}
  --print                  write nothing: show every file and every command it would run
  --output-dir <dir>       only write the files into <dir> (no root needed, nothing started)
  --nas synology|qnap|unraid|truenas
                           print that NAS system's steps, here or on any other machine
${HELP_OPTION}

Exit codes: 0 installed (or steps printed), 1 a step failed, 2 usage or config error.`,
    async run(argv) {
      const request = serviceRequest(this, argv, { print: { type: 'boolean' }, 'output-dir': { type: 'string' }, nas: { type: 'string' } }, env);
      if (!request) return EXIT.ok;
      const { values } = request;
      if (values.print && values['output-dir'] !== undefined) throw new UsageError('--print and --output-dir exclude each other: give one');
      const configPath = configPathOf(values);
      const fromConfig = await configInputs(request.program, configPath);
      const nas = nasTarget(request, env);
      if (nas) return printNasGuide(nas, request, configPath, fromConfig, env);
      const description = describeRequest(request, configPath, fromConfig, env);
      if (typeof values['output-dir'] === 'string') return writeOutputDir(values['output-dir'], description, env);
      const plan = planInstall(description, env.node.realPath);
      return printOrApply(this.name, env.node.note ? { ...plan, notes: [env.node.note, ...plan.notes] } : plan, request, env);
    },
  };
}

function uninstallCommand(env: ServiceCommandEnvironment): Command {
  return {
    name: 'uninstall-service',
    summary: 'stop and remove what install-service installed',
    help: `Usage: homeport uninstall-service agent|rendezvous [--config <file>] [--platform linux|macos] [--print] [--user NAME]

Stops the service and its re-register backstop and removes every file install-service wrote for the
program. State and logs stay. Needs root. The config is optional: it only names the state directory.

Options:
  -c, --config <file>      the program's configuration (optional)
${COMMON_OPTIONS}
  --print                  change nothing: show every command and file it would remove
${HELP_OPTION}

Exit codes: 0 removed, 1 a step failed, 2 usage or config error.`,
    async run(argv) {
      const request = serviceRequest(this, argv, { print: { type: 'boolean' } }, env);
      if (!request) return EXIT.ok;
      const fromConfig = await optionalConfig(request);
      const plan = planUninstall({
        ...serviceIdentity(request.program, request.platform),
        nodePath: env.node.realPath,
        logDirectory: logDirectory(request.platform, request.program),
        user: request.user,
        ...(fromConfig && { stateDirectory: fromConfig.stateDirectory }),
      });
      return printOrApply(this.name, plan, request, env);
    },
  };
}

function statusCommand(env: ServiceCommandEnvironment): Command {
  return {
    name: 'service-status',
    summary: 'show whether the agent or rendezvous service is installed and running',
    help: `Usage: homeport service-status agent|rendezvous [--config <file>] [--platform linux|macos]

Shows which service files are installed and what the service manager says about them. The config is
optional: with it, a missing re-register backstop the config asks for counts as a fault.

Options:
  -c, --config <file>      the program's configuration (optional)
${COMMON_OPTIONS}
${HELP_OPTION}

Exit codes: 0 installed and running, 1 not (fully) installed or not running, 2 usage or config error.`,
    async run(argv) {
      const request = serviceRequest(this, argv, {}, env);
      return request ? reportStatus(request, env) : EXIT.ok;
    },
  };
}

function realpathOrUndefined(filePath: string): string | undefined {
  try {
    return realpathSync(filePath);
  } catch {
    return undefined;
  }
}

const systemEnvironment: ServiceCommandEnvironment = {
  runner: systemRunner,
  fs: rootedFileSystem('/'),
  outputFs: rootedFileSystem,
  getuid: () => process.getuid?.() ?? -1,
  hostPlatform: hostPlatform(),
  node: chooseNodeBinary(process.execPath, realpathOrUndefined),
  cliPath: fileURLToPath(new URL('./main.js', import.meta.url)),
  env: process.env,
  probe: fileMarkerProbe,
  out: (line) => console.log(line),
  error: (line) => console.error(line),
};

const systemCommands = createServiceCommands(systemEnvironment);
export const installServiceCommand = systemCommands.install;
export const uninstallServiceCommand = systemCommands.uninstall;
export const serviceStatusCommand = systemCommands.status;
