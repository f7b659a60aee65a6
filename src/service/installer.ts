import { spawn } from 'node:child_process';
import { chown, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../common/atomic-write.js';
import { err, ok, type Result } from '../common/result.js';
import { mayHaveReregisterJob, type ServiceDescription, type ServiceIdentity } from './description.js';
import { LAUNCH_DAEMONS_DIR, renderServiceFiles, serviceFilePaths } from './files.js';
import { launchdPlistName, launchdReregisterLabel, programLogPath } from './launchd.js';
import { systemdServiceName, systemdTimerName } from './systemd.js';

/**
 * What install-service, uninstall-service and service-status do, as data: the CLI prints a plan (--print)
 * or applies it with an injected runner and file system, so tests never run a real launchctl or systemctl.
 */

export interface PlannedFile {
  /** Absolute path on the target system. */
  path: string;
  content: string;
  mode: number;
  /** Numeric owner; absent keeps whoever writes it (root, under sudo). */
  owner?: { uid: number; gid: number };
}

export interface ServicePlan {
  /** Stops what may be running; a failure here means "was not running" and does not stop the plan. */
  stop: string[][];
  remove: string[];
  files: PlannedFile[];
  /** Run in order; the first failure stops the plan. */
  commands: string[][];
  /** Printed after the plan: why a step is there, what was deliberately left, how to restart. */
  notes: string[];
}

export interface StatusPlan {
  files: string[];
  commands: string[][];
}

const FIREWALL = '/usr/libexec/ApplicationFirewall/socketfilterfw';
const ROOT_WHEEL = { uid: 0, gid: 0 };
/**
 * Unit files, plists and the newsyslog entry are world-readable and root-writable: launchd refuses a
 * LaunchDaemon that anyone else could change, and newsyslog runs as root.
 */
const SERVICE_FILE_MODE = 0o644;

/** The installed service files at their real paths. */
export function plannedServiceFiles(d: ServiceDescription): PlannedFile[] {
  return renderServiceFiles(d).map((file) => ({
    path: path.posix.join(file.directory, file.name),
    content: file.content,
    mode: SERVICE_FILE_MODE,
    ...(d.platform === 'macos' && { owner: ROOT_WHEEL }),
  }));
}

/** The launchd labels of the daemon and its backstop job, in load order. */
function launchdLabels(id: ServiceIdentity, withBackstop: boolean): string[] {
  return withBackstop ? [id.label, launchdReregisterLabel(id)] : [id.label];
}

/** The systemd units `enable --now` starts: the daemon and the backstop timer (not its oneshot). */
function systemdEnabledUnits(id: ServiceIdentity, withBackstop: boolean): string[] {
  return withBackstop ? [systemdServiceName(id), systemdTimerName(id)] : [systemdServiceName(id)];
}

/**
 * Stops and disables every job install-service may have started for the program, backstop included, last
 * started first. Installing does it too: launchctl refuses to bootstrap a job that is loaded, a running unit
 * would keep its old command line, and a backstop the config no longer asks for must not stay enabled.
 */
function stopCommands(id: ServiceIdentity): string[][] {
  const withBackstop = mayHaveReregisterJob(id);
  if (id.platform === 'macos') return launchdLabels(id, withBackstop).reverse().map((label) => ['launchctl', 'bootout', `system/${label}`]);
  return systemdEnabledUnits(id, withBackstop).reverse().map((name) => ['systemctl', 'disable', '--now', name]);
}

/** The files of an earlier install that this one does not write again (a backstop the config dropped). */
function staleFiles(d: ServiceDescription, files: PlannedFile[]): string[] {
  return serviceFilePaths(d).filter((filePath) => !files.some((file) => file.path === filePath));
}

/** The daemon writes its state and logs as its own user; the service manager does not create them everywhere. */
function directoryCommands(d: ServiceDescription): string[][] {
  return [...new Set([d.stateDirectory, d.logDirectory])].map((dir) => ['install', '-d', '-o', d.user, '-m', '0750', dir]);
}

/** `nodeRealPath`: the file d.nodePath leads to, which the macOS application firewall must allow. */
export function planInstall(d: ServiceDescription, nodeRealPath = d.nodePath): ServicePlan {
  return d.platform === 'macos' ? planLaunchdInstall(d, nodeRealPath) : planSystemdInstall(d);
}

function planSystemdInstall(d: ServiceDescription): ServicePlan {
  const unit = systemdServiceName(d);
  return installPlan(d, [
    // Creates the system account if it is missing and leaves an existing one alone.
    ['systemd-sysusers', '--inline', `u ${d.user} - "homeport ${d.program}"`],
    ...directoryCommands(d),
    ['systemctl', 'daemon-reload'],
    ...systemdEnabledUnits(d, d.reregisterCalendar !== undefined).map((name) => ['systemctl', 'enable', '--now', name]),
  ], [`restart with: systemctl restart ${unit}; logs: journalctl -u ${unit}`]);
}

function planLaunchdInstall(d: ServiceDescription, nodeRealPath: string): ServicePlan {
  const upgrades = nodeRealPath === d.nodePath ? '' : '; after upgrading node run install-service again, so it allows the new binary';
  return installPlan(d, [
    ...directoryCommands(d),
    ...launchdLabels(d, d.reregisterCalendar !== undefined).flatMap((label) => [
      ['launchctl', 'enable', `system/${label}`],
      ['launchctl', 'bootstrap', 'system', path.posix.join(LAUNCH_DAEMONS_DIR, launchdPlistName({ label }))],
    ]),
    [FIREWALL, '--add', nodeRealPath],
    [FIREWALL, '--unblockapp', nodeRealPath],
  ], [
    `the application firewall lets ${nodeRealPath} accept inbound connections: ${d.program === 'agent' ? 'the punched port must reach the agent' : 'agents and browsers must reach the rendezvous'}${upgrades}`,
    `restart with: launchctl kickstart -k system/${d.label}; logs: ${programLogPath(d)} (rotated daily by newsyslog)`,
  ]);
}

/** Either platform's install: stop what an earlier install started, drop its stale files, write, then run. */
function installPlan(d: ServiceDescription, commands: string[][], notes: string[]): ServicePlan {
  const files = plannedServiceFiles(d);
  return { stop: stopCommands(d), remove: staleFiles(d, files), files, commands, notes };
}

/**
 * What uninstall needs: the program's name finds every file and job; the rest only goes into the notes.
 * The state directory is known only when the config was given.
 */
export type UninstallTarget = ServiceIdentity & Pick<ServiceDescription, 'nodePath' | 'logDirectory' | 'user'> & { stateDirectory?: string };

export function planUninstall(target: UninstallTarget): ServicePlan {
  const macos = target.platform === 'macos';
  const state = target.stateDirectory ? `the state in ${target.stateDirectory}` : 'the state (stateDir in the config)';
  return {
    stop: stopCommands(target),
    remove: serviceFilePaths(target),
    files: [],
    commands: macos ? [] : [['systemctl', 'daemon-reload']],
    notes: [
      `left in place: ${state}, the logs in ${target.logDirectory}${macos ? '' : ` and the user ${target.user}`}; remove them by hand if no longer wanted`,
      ...(macos ? [`left in place: the firewall entry of ${target.nodePath} (other node programs may rely on it)`] : []),
    ],
  };
}

/** What service-status checks; the backstop only when it is expected (the config has it, or its file is there). */
export function planStatus(id: ServiceIdentity, withBackstop: boolean): StatusPlan {
  const files = serviceFilePaths(id, withBackstop);
  if (id.platform === 'macos') return { files, commands: launchdLabels(id, withBackstop).map((label) => ['launchctl', 'print', `system/${label}`]) };
  return {
    files,
    commands: systemdEnabledUnits(id, withBackstop).flatMap((name) => [
      ['systemctl', 'is-enabled', name],
      ['systemctl', 'is-active', name],
    ]),
  };
}

export interface CommandOutcome {
  code: number;
  /** stdout and stderr together, trimmed. */
  output: string;
}

export type CommandRunner = (argv: string[]) => Promise<CommandOutcome>;

export interface PlanFileSystem {
  write(file: PlannedFile): Promise<void>;
  remove(filePath: string): Promise<void>;
  exists(filePath: string): Promise<boolean>;
}

export interface PlanEnvironment {
  runner: CommandRunner;
  fs: PlanFileSystem;
  /** Progress lines (each command before it runs). */
  log?: (line: string) => void;
}

/** A command as a shell would show it, for messages and --print. */
export function formatCommand(argv: string[]): string {
  return argv.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`)).join(' ');
}

async function runStep(argv: string[], env: PlanEnvironment): Promise<CommandOutcome> {
  env.log?.(`$ ${formatCommand(argv)}`);
  return env.runner(argv).catch((error: Error) => ({ code: -1, output: error.message }));
}

/**
 * Stops, removes, writes, then runs the commands; the first failing command (or write) ends the plan with a
 * one-line error naming it. A failing stop command is only logged: the service was not running.
 */
export async function applyPlan(plan: ServicePlan, env: PlanEnvironment): Promise<Result<void>> {
  for (const argv of plan.stop) {
    const outcome = await runStep(argv, env);
    if (outcome.code !== 0) env.log?.(`  (not running: ${firstLine(outcome.output) || `exit ${outcome.code}`})`);
  }
  try {
    for (const filePath of plan.remove) await env.fs.remove(filePath);
    for (const file of plan.files) await env.fs.write(file);
  } catch (error) {
    return err((error as Error).message);
  }
  for (const argv of plan.commands) {
    const outcome = await runStep(argv, env);
    if (outcome.code !== 0) {
      const detail = firstLine(outcome.output);
      return err(`"${formatCommand(argv)}" failed with exit code ${outcome.code}${detail ? `: ${detail}` : ''}`);
    }
  }
  return ok(undefined);
}

function firstLine(text: string): string {
  return text.trim().split('\n')[0] ?? '';
}

/** Runs a command without a shell, collecting its output; a missing program is exit code 127, as in a shell. */
export const systemRunner: CommandRunner = (argv) =>
  new Promise((resolve) => {
    const [program, ...args] = argv as [string, ...string[]];
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk; });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk; });
    child.on('error', (error) => resolve({ code: 127, output: `${program}: ${error.message}` }));
    child.on('close', (code) => resolve({ code: code ?? -1, output: output.trim() }));
  });

/** The real file system below `root` ("/" when installing; a directory for --output-dir-like tests). */
export function rootedFileSystem(root = '/'): PlanFileSystem {
  const under = (filePath: string): string => path.join(root, filePath);
  return {
    async write(file) {
      const target = under(file.path);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFileAtomic(target, file.content, file.mode);
      if (file.owner) await chown(target, file.owner.uid, file.owner.gid);
    },
    async remove(filePath) {
      await rm(under(filePath), { force: true });
    },
    async exists(filePath) {
      return stat(under(filePath)).then(() => true, () => false);
    },
  };
}
