import { spawn } from 'node:child_process';
import { chown, mkdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../common/atomic-write.js';
import { err, ok, type Result } from '../common/result.js';
import { type ServiceDescription } from './description.js';
import { renderServiceFiles } from './files.js';
import { launchdReregisterLabel } from './launchd.js';
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

const SYSTEMD_DIR = '/etc/systemd/system';
const LAUNCH_DAEMONS_DIR = '/Library/LaunchDaemons';
const FIREWALL = '/usr/libexec/ApplicationFirewall/socketfilterfw';
const ROOT_WHEEL = { uid: 0, gid: 0 };
/** Unit files and plists are world-readable and root-writable, as launchd insists for a LaunchDaemon. */
const SERVICE_FILE_MODE = 0o644;

function serviceDirectory(d: ServiceDescription): string {
  return d.platform === 'macos' ? LAUNCH_DAEMONS_DIR : SYSTEMD_DIR;
}

/** The installed service files at their real paths. */
export function plannedServiceFiles(d: ServiceDescription): PlannedFile[] {
  return renderServiceFiles(d).map((file) => ({
    path: path.posix.join(serviceDirectory(d), file.name),
    content: file.content,
    mode: SERVICE_FILE_MODE,
    ...(d.platform === 'macos' && { owner: ROOT_WHEEL }),
  }));
}

/** The launchd labels of the daemon and its backstop job, in load order. */
function launchdLabels(d: ServiceDescription): string[] {
  return d.reregisterCalendar ? [d.label, launchdReregisterLabel(d)] : [d.label];
}

/** The systemd units `enable --now` starts: the daemon and the backstop timer (not its oneshot). */
function systemdEnabledUnits(d: ServiceDescription): string[] {
  return d.reregisterCalendar ? [systemdServiceName(d), systemdTimerName(d)] : [systemdServiceName(d)];
}

/** The daemon writes its state and logs as its own user; the service manager does not create them everywhere. */
function directoryCommands(d: ServiceDescription): string[][] {
  return [...new Set([d.stateDirectory, d.logDirectory])].map((dir) => ['install', '-d', '-o', d.user, '-m', '0750', dir]);
}

export function planInstall(d: ServiceDescription): ServicePlan {
  return d.platform === 'macos' ? planLaunchdInstall(d) : planSystemdInstall(d);
}

function planSystemdInstall(d: ServiceDescription): ServicePlan {
  const unit = systemdServiceName(d);
  return {
    stop: [],
    remove: [],
    files: plannedServiceFiles(d),
    commands: [
      // Creates the system account if it is missing and leaves an existing one alone.
      ['systemd-sysusers', '--inline', `u ${d.user} - "homeport ${d.program}"`],
      ...directoryCommands(d),
      ['systemctl', 'daemon-reload'],
      ...systemdEnabledUnits(d).map((name) => ['systemctl', 'enable', '--now', name]),
    ],
    notes: [`restart with: systemctl restart ${unit}; logs: journalctl -u ${unit}`],
  };
}

function planLaunchdInstall(d: ServiceDescription): ServicePlan {
  const files = plannedServiceFiles(d);
  const labels = launchdLabels(d);
  return {
    stop: [],
    remove: [],
    files,
    commands: [
      ...directoryCommands(d),
      ...labels.flatMap((label, i) => [
        ['launchctl', 'enable', `system/${label}`],
        ['launchctl', 'bootstrap', 'system', files[i]!.path],
      ]),
      [FIREWALL, '--add', d.nodePath],
      [FIREWALL, '--unblockapp', d.nodePath],
    ],
    notes: [
      `the application firewall lets ${d.nodePath} accept inbound connections: the punched port must reach the ${d.program}`,
      `restart with: launchctl kickstart -k system/${d.label}`,
    ],
  };
}

export function planUninstall(d: ServiceDescription): ServicePlan {
  const macos = d.platform === 'macos';
  const stop = macos
    ? launchdLabels(d).reverse().map((label) => ['launchctl', 'bootout', `system/${label}`])
    : systemdEnabledUnits(d).reverse().map((name) => ['systemctl', 'disable', '--now', name]);
  return {
    stop,
    remove: plannedServiceFiles(d).map((file) => file.path),
    files: [],
    commands: macos ? [] : [['systemctl', 'daemon-reload']],
    notes: [
      `left in place: the state in ${d.stateDirectory}, the logs in ${d.logDirectory}${macos ? '' : ` and the user ${d.user}`}; remove them by hand if no longer wanted`,
      ...(macos ? [`left in place: the firewall entry of ${d.nodePath} (other node programs may rely on it)`] : []),
    ],
  };
}

export function planStatus(d: ServiceDescription): StatusPlan {
  const files = plannedServiceFiles(d).map((file) => file.path);
  if (d.platform === 'macos') return { files, commands: launchdLabels(d).map((label) => ['launchctl', 'print', `system/${label}`]) };
  return {
    files,
    commands: systemdEnabledUnits(d).flatMap((name) => [
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
