import path from 'node:path';
import { EXIT } from '../common/exit-codes.js';
import { err, ok, type Result } from '../common/result.js';

/** What a service file describes, independent of launchd or systemd (one description, two renderings). */

export type ServiceProgram = 'agent' | 'rendezvous';
export type ServicePlatform = 'linux' | 'macos';

/** A daily wall-clock time, the backstop re-register after the router's reboot. */
export interface DailyTime {
  hour: number;
  minute: number;
}

export interface ServiceDescription {
  program: ServiceProgram;
  platform: ServicePlatform;
  /** systemd unit name without suffix ("homeport-agent") or launchd Label ("org.homeport.agent"). */
  label: string;
  /** The real node binary (realpath of process.execPath), absolute. */
  nodePath: string;
  /** Absolute path of dist/src/cli/main.js. */
  cliPath: string;
  configPath: string;
  /** The account the daemon runs as. */
  user: string;
  workingDirectory: string;
  stateDirectory: string;
  logDirectory: string;
  environment: Record<string, string>;
  /** Ports the program listens on: one below 1024 needs CAP_NET_BIND_SERVICE on Linux. */
  listenPorts: number[];
  /** When set, a timer / calendar job runs `homeport reregister` daily at this time (agent only). */
  reregisterCalendar?: DailyTime;
}

/** What names an installed service's files and jobs: enough for uninstall-service and service-status. */
export type ServiceIdentity = Pick<ServiceDescription, 'program' | 'platform' | 'label'>;

export function serviceIdentity(program: ServiceProgram, platform: ServicePlatform): ServiceIdentity {
  return { program, platform, label: serviceLabel(program, platform) };
}

/** Only the agent has the daily re-register backstop; uninstall and status look for it whatever the config says now. */
export function mayHaveReregisterJob(id: ServiceIdentity): boolean {
  return id.program === 'agent';
}

/** A description with the backstop re-register job. */
export type ReregisteringService = ServiceDescription & { reregisterCalendar: DailyTime };

export interface ServiceInputs {
  program: ServiceProgram;
  platform: ServicePlatform;
  nodePath: string;
  cliPath: string;
  configPath: string;
  user: string;
  stateDirectory: string;
  logDirectory: string;
  /** Default: the state directory. */
  workingDirectory?: string;
  environment?: Record<string, string>;
  listenPorts: number[];
  reregisterCalendar?: DailyTime;
}

/** The exit code of a configuration error: restarting cannot fix it, so the service manager must not loop. */
export const CONFIG_ERROR_EXIT = EXIT.usage;

export function serviceLabel(program: ServiceProgram, platform: ServicePlatform): string {
  return platform === 'macos' ? `org.homeport.${program}` : `homeport-${program}`;
}

export function hasReregisterJob(d: ServiceDescription): d is ReregisteringService {
  return d.reregisterCalendar !== undefined;
}

/**
 * Node flags per program. The rendezvous's relay reads every byte into a fresh buffer, and with V8's small
 * initial old-generation limit that set off a full collection every few dozen megabytes relayed: a larger
 * initial limit halves the relay's CPU per GiB (bench/README.md, "Relay benchmark"). Node accepts the flag
 * only on its command line, not in NODE_OPTIONS nor at run time.
 */
const NODE_FLAGS: Record<ServiceProgram, string[]> = {
  agent: [],
  rendezvous: ['--initial-old-space-size=64'],
};

/** The node flags a program's service starts it with. */
export function serviceNodeFlags(program: ServiceProgram): string[] {
  return [...NODE_FLAGS[program]];
}

/** The arguments after the node binary that start the daemon. */
export function daemonArguments(d: ServiceDescription): string[] {
  return [...NODE_FLAGS[d.program], d.cliPath, d.program, '--config', d.configPath];
}

/** The arguments after the node binary of the backstop job. */
export function reregisterArguments(d: ServiceDescription): string[] {
  return [d.cliPath, 'reregister', '--config', d.configPath];
}

/** Builds and checks a description; every problem is reported, one line each, joined by newlines. */
export function describeService(inputs: ServiceInputs): Result<ServiceDescription> {
  const description: ServiceDescription = {
    program: inputs.program,
    platform: inputs.platform,
    label: serviceLabel(inputs.program, inputs.platform),
    nodePath: inputs.nodePath,
    cliPath: inputs.cliPath,
    configPath: inputs.configPath,
    user: inputs.user,
    workingDirectory: inputs.workingDirectory ?? inputs.stateDirectory,
    stateDirectory: inputs.stateDirectory,
    logDirectory: inputs.logDirectory,
    environment: { ...inputs.environment },
    listenPorts: [...new Set(inputs.listenPorts)].sort((a, b) => a - b),
    ...(inputs.reregisterCalendar && { reregisterCalendar: { ...inputs.reregisterCalendar } }),
  };
  const problems = validateDescription(description);
  return problems.length === 0 ? ok(description) : err(problems.join('\n'));
}

/**
 * Directories of Node version managers: their binaries live in a user's home and vanish on the next
 * `nvm uninstall` or version switch, which would leave a daemon that no longer starts.
 */
const VERSION_MANAGER_DIRS = ['.nvm', '.volta', '.asdf', '.fnm', 'fnm', 'fnm_multishells', '.nodenv', 'nodenv', '.n', '.nodebrew', 'mise', '.mise'];

/** Directories systemd's ProtectHome=true hides from the service. */
const PROTECT_HOME_DIRS = ['/home', '/root', '/run/user'];

export function validateDescription(d: ServiceDescription): string[] {
  return [
    ...pathProblems(d),
    ...(d.platform === 'linux' ? privateTmpProblems(d) : newsyslogPathProblems(d)),
    ...systemDirectoryProblems(d),
    ...nodeBinaryProblems(d.nodePath, d.platform),
    ...userProblems(d.user),
    ...environmentProblems(d.environment),
    ...portProblems(d.listenPorts),
    ...calendarProblems(d),
  ];
}

function pathProblems(d: ServiceDescription): string[] {
  const paths = {
    nodePath: d.nodePath,
    cliPath: d.cliPath,
    configPath: d.configPath,
    workingDirectory: d.workingDirectory,
    stateDirectory: d.stateDirectory,
    logDirectory: d.logDirectory,
  };
  const problems: string[] = [];
  for (const [field, value] of Object.entries(paths)) {
    const problem = absolutePathProblem(value);
    if (problem) problems.push(`service ${field} ${JSON.stringify(value)}: ${problem}`);
    else if (d.platform === 'linux' && field !== 'nodePath' && underProtectedHome(value)) {
      problems.push(`service ${field} "${value}": systemd's ProtectHome=true hides ${protectedRoot(value)} from the service; move it outside (e.g. /etc/homeport, /var/lib, /opt)`);
    }
  }
  return problems;
}

/** Directories systemd's PrivateTmp=yes replaces with a private, empty one for the service. */
const PRIVATE_TMP_DIRS = ['/tmp', '/var/tmp'];

function privateTmpProblems(d: ServiceDescription): string[] {
  const tmp = PRIVATE_TMP_DIRS.find((dir) => d.stateDirectory === dir || d.stateDirectory.startsWith(`${dir}/`));
  if (!tmp) return [];
  return [`stateDir "${d.stateDirectory}" (the config's stateDir) is under ${tmp}: systemd runs the service with PrivateTmp=yes, a private and empty ${tmp}, so its state would be lost at every restart; set stateDir to a lasting directory, e.g. stateDir = "/var/lib/homeport-${d.program}"`];
}

/**
 * Directories of the system or of a person, which install-service must never take over: it creates the state
 * and log directories with `install -d -o <user> -m 0750`, which also chowns and chmods one that exists.
 * Besides these, every directory one level below / (and / itself) is refused: /opt, /srv, /volume1 …
 * Compared in lower case: APFS ignores case, and refusing a look-alike on Linux costs nothing.
 */
const SYSTEM_DIRECTORIES = new Set([
  '/etc/default', '/etc/init.d', '/etc/ssl', '/etc/systemd', '/run/user',
  '/usr/bin', '/usr/include', '/usr/lib', '/usr/libexec', '/usr/local', '/usr/sbin', '/usr/share', '/usr/src',
  '/usr/local/bin', '/usr/local/etc', '/usr/local/lib', '/usr/local/share', '/usr/local/var', '/usr/local/var/lib', '/usr/local/var/log',
  '/var/backups', '/var/cache', '/var/db', '/var/lib', '/var/local', '/var/log', '/var/mail', '/var/opt', '/var/run', '/var/spool', '/var/tmp', '/var/www',
  '/opt/homebrew', '/opt/homebrew/var', '/opt/homebrew/var/lib', '/opt/homebrew/var/log',
  '/library/application support', '/library/caches', '/library/launchdaemons', '/library/logs', '/library/preferences', '/system/library',
]);

/** Folders whose every child is a person's home or a whole disk: /home/ann, /Users/ann, /mnt/pool, /Volumes/Data. */
const HOME_AND_DISK_ROOTS = new Set(['/home', '/users', '/mnt', '/media', '/volumes']);

/** Whether `dir` (absolute) belongs to the system or a person rather than to one program. */
export function isSystemDirectory(dir: string): boolean {
  // on macOS /var, /etc and /tmp are links into /private
  const folded = path.posix.normalize(dir).toLowerCase().replace(/^\/private(?=\/(var|etc|tmp)(\/|$))/, '');
  const parent = path.posix.dirname(folded);
  return parent === '/' || SYSTEM_DIRECTORIES.has(folded) || HOME_AND_DISK_ROOTS.has(parent);
}

function systemDirectoryProblems(d: ServiceDescription): string[] {
  const problems: string[] = [];
  const taken = 'install-service would make the service\'s user its owner (install -d -o)';
  if (isSystemDirectory(d.stateDirectory)) {
    problems.push(`stateDir "${d.stateDirectory}" (the config's stateDir) is a system directory: ${taken}; set stateDir to a directory of homeport's own, e.g. stateDir = "/var/lib/homeport-${d.program}"`);
  }
  if (isSystemDirectory(d.logDirectory)) {
    const example = d.platform === 'macos' ? '/Library/Logs' : '/var/log';
    problems.push(`service logDirectory "${d.logDirectory}" is a system directory: ${taken}; use a directory of homeport's own, e.g. "${example}/homeport-${d.program}"`);
  }
  return problems;
}

/** newsyslog.conf separates its fields by whitespace and cannot quote: the log and pid paths must have none. */
function newsyslogPathProblems(d: ServiceDescription): string[] {
  const fields = { stateDirectory: d.stateDirectory, logDirectory: d.logDirectory };
  return Object.entries(fields)
    .filter(([, value]) => /\s/.test(value))
    .map(([field, value]) => `service ${field} "${value}": the log rotation entry (/etc/newsyslog.d) cannot hold a path with spaces; use a path without them${field === 'stateDirectory' ? ' (stateDir in the config)' : ''}`);
}

export function absolutePathProblem(value: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(value)) return 'contains a control character (a line break, a tab, NUL); rename it';
  if (!path.posix.isAbsolute(value)) return 'is relative; service managers expand neither ~ nor $VAR nor the working directory, give an absolute path';
  const normalized = path.posix.normalize(value).replace(/(.)\/$/, '$1');
  if (normalized !== value) return `is not in its plain form; use "${normalized}"`;
  return undefined;
}

/** A node binary that a version manager switches or removes, which would leave a service that no longer starts. */
export function versionManagerProblem(nodePath: string): string | undefined {
  const segments = nodePath.split('/');
  const manager = VERSION_MANAGER_DIRS.find((dir) => segments.includes(dir));
  if (!manager) return undefined;
  return `service nodePath "${nodePath}" belongs to a Node version manager (${manager}): it changes or disappears with the next version switch; install node system-wide (a distribution package, nodejs.org or Homebrew) and run the install with that node`;
}

function nodeBinaryProblems(nodePath: string, platform: ServicePlatform): string[] {
  if (!path.posix.isAbsolute(nodePath)) return [];
  const managed = versionManagerProblem(nodePath);
  if (managed) return [managed];
  if (platform === 'linux' && /["'\\]/.test(nodePath)) {
    return [`service nodePath ${JSON.stringify(nodePath)}: systemd refuses an executable path with quotes or backslashes; install or link node at a plain path (e.g. /usr/local/bin/node)`];
  }
  if (platform === 'linux' && underProtectedHome(nodePath)) {
    return [`service nodePath "${nodePath}": systemd's ProtectHome=true hides ${protectedRoot(nodePath)} from the service, so it could not start node; install node outside the home directories (e.g. /usr/bin/node or /usr/local/bin/node)`];
  }
  return [];
}

function underProtectedHome(value: string): boolean {
  return protectedRoot(value) !== undefined;
}

function protectedRoot(value: string): string | undefined {
  return PROTECT_HOME_DIRS.find((dir) => value === dir || value.startsWith(`${dir}/`));
}

function userProblems(user: string): string[] {
  // The portable user name set (POSIX plus the common "-"): it needs no quoting in either format.
  if (/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) return [];
  return [`service user "${user}": use a system account name of lower-case letters, digits, "_" and "-" (at most 32), e.g. "homeport"`];
}

function environmentProblems(environment: Record<string, string>): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(environment)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) problems.push(`service environment name "${key}": use letters, digits and "_", not starting with a digit`);
    if (/[\x00-\x1f\x7f]/.test(value)) problems.push(`service environment ${key}: the value contains a control character (a line break, a tab, NUL); remove it`);
  }
  return problems;
}

function portProblems(ports: number[]): string[] {
  return ports
    .filter((port) => !Number.isInteger(port) || port < 1 || port > 65535)
    .map((port) => `service listen port ${port}: use a whole number from 1 to 65535`);
}

function calendarProblems(d: ServiceDescription): string[] {
  const calendar = d.reregisterCalendar;
  if (!calendar) return [];
  const problems: string[] = [];
  if (d.program !== 'agent') problems.push('service reregisterCalendar: only the agent re-registers; remove it for the rendezvous');
  if (!Number.isInteger(calendar.hour) || calendar.hour < 0 || calendar.hour > 23) problems.push(`service reregisterCalendar hour ${calendar.hour}: use 0 to 23`);
  if (!Number.isInteger(calendar.minute) || calendar.minute < 0 || calendar.minute > 59) problems.push(`service reregisterCalendar minute ${calendar.minute}: use 0 to 59`);
  return problems;
}

/** Whether the service binds a privileged port (below 1024) and so needs CAP_NET_BIND_SERVICE on Linux. */
export function needsBindCapability(d: ServiceDescription): boolean {
  return d.listenPorts.some((port) => port < 1024);
}

/**
 * The time of a daily cron expression ("0 20 4 * * *", seconds first, or "20 4 * * *"), for the backstop
 * job; undefined when the schedule is not one fixed time every day.
 */
export function dailyTimeFromCron(expression: string): DailyTime | undefined {
  const fields = expression.trim().split(/\s+/);
  if (fields.length < 5 || fields.length > 6) return undefined;
  if (fields.length === 6 && !/^\d{1,2}$/.test(fields.shift()!)) return undefined;
  const [minute, hour, ...rest] = fields;
  if (rest.some((field) => field !== '*')) return undefined;
  if (!/^\d{1,2}$/.test(minute ?? '') || !/^\d{1,2}$/.test(hour ?? '')) return undefined;
  const time = { hour: Number(hour), minute: Number(minute) };
  return time.hour <= 23 && time.minute <= 59 ? time : undefined;
}
