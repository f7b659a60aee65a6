import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { err, ok, type Result } from '../common/result.js';
import { absolutePathProblem, versionManagerProblem, type ServiceProgram } from './description.js';
import { formatCommand } from './installer.js';

/**
 * NAS systems where install-service installs nothing and prints that system's own way to start a program at
 * boot instead: they have no systemd, or replace by-hand changes to it on their next update.
 */

export type NasSystem = 'synology' | 'qnap' | 'unraid' | 'truenas';
export const NAS_SYSTEMS: NasSystem[] = ['synology', 'qnap', 'unraid', 'truenas'];

/** A marker file's text ('' when it exists but was not read), or undefined when it does not exist. */
export type MarkerProbe = (filePath: string) => string | undefined;

export interface NasDetection {
  system: NasSystem;
  /** The version its marker file names, when it names one. */
  version?: string;
  /** The file that gave it away, for the message. */
  marker: string;
}

interface NasSignature {
  system: NasSystem;
  /** Any one of these sets of files, all present, identifies the system. */
  evidence: string[][];
  version?: (probe: MarkerProbe) => string | undefined;
}

/** A `key="value"` line's value, as in Synology's VERSION and Unraid's unraid-version files. */
function quotedValue(text: string | undefined, key: string): string | undefined {
  return text?.match(new RegExp(`^${key}="([^"\\n]*)"`, 'm'))?.[1] || undefined;
}

const SIGNATURES: NasSignature[] = [
  {
    system: 'synology',
    evidence: [['/etc/synoinfo.conf'], ['/etc.defaults/VERSION']],
    version: (probe) => quotedValue(probe('/etc.defaults/VERSION'), 'productversion'),
  },
  { system: 'qnap', evidence: [['/etc/config/qpkg.conf'], ['/etc/platform.conf']] },
  { system: 'unraid', evidence: [['/etc/unraid-version']], version: (probe) => quotedValue(probe('/etc/unraid-version'), 'version') },
  {
    // TrueNAS's image build (truenas/scale-build) writes its version to /etc/version, and /usr/bin/midclt is
    // its middleware's client. /etc/version alone is not enough: other appliances write one too.
    system: 'truenas',
    evidence: [['/etc/version', '/usr/bin/midclt']],
    version: (probe) => probe('/etc/version')?.trim().split('\n')[0] || undefined,
  },
];

/** Which NAS system the probed file system belongs to, or undefined for any other system. */
export function detectNas(probe: MarkerProbe): NasDetection | undefined {
  for (const signature of SIGNATURES) {
    const found = signature.evidence.find((files) => files.every((file) => probe(file) !== undefined));
    if (!found) continue;
    const version = signature.version?.(probe);
    return { system: signature.system, marker: found.join(' and '), ...(version && { version }) };
  }
  return undefined;
}

/** The real probe: a marker's text when it is a small regular file, '' when it is a large one. */
export function fileMarkerProbe(filePath: string): string | undefined {
  try {
    const stats = statSync(filePath);
    return stats.isFile() && stats.size <= 64 * 1024 ? readFileSync(filePath, 'utf8') : '';
  } catch {
    return undefined;
  }
}

/** Everything the printed steps name: absolute paths, so they work from a boot task with no working directory. */
export interface NasLaunch {
  program: ServiceProgram;
  nodePath: string;
  cliPath: string;
  configPath: string;
  stateDirectory: string;
}

export function checkNasLaunch(launch: NasLaunch): Result<NasLaunch> {
  const paths = { nodePath: launch.nodePath, cliPath: launch.cliPath, configPath: launch.configPath, stateDirectory: launch.stateDirectory };
  const problems = Object.entries(paths).flatMap(([field, value]) => {
    const problem = absolutePathProblem(value);
    return problem ? [`${field} ${JSON.stringify(value)}: ${problem}`] : [];
  });
  const managed = versionManagerProblem(launch.nodePath);
  if (managed) problems.push(managed);
  return problems.length === 0 ? ok(launch) : err(problems.join('\n'));
}

function pidFile(launch: NasLaunch): string {
  return path.posix.join(launch.stateDirectory, `${launch.program}.pid`);
}

function errorLog(launch: NasLaunch): string {
  return path.posix.join(launch.stateDirectory, `${launch.program}.errors.log`);
}

/** The program's command line; the pid file lets the user stop it cleanly. */
export function nasCommandLine(launch: NasLaunch): string {
  return formatCommand([launch.nodePath, launch.cliPath, launch.program, '--config', launch.configPath, '--pid-file', pidFile(launch)]);
}

/**
 * The lines a boot task runs. It returns at once (boot tasks have time limits), restarts the program 5 s
 * after a crash, and stops after a clean stop (exit 0) or a configuration error (exit 2), like the systemd
 * unit. A missing binary (a volume not mounted yet) counts as a crash, so it waits for the volume. Only
 * stderr is kept: request logs would grow without bound where nothing rotates them.
 */
export function nasBootScript(launch: NasLaunch): string[] {
  return [
    '(',
    '  while true; do',
    `    mkdir -p ${formatCommand([launch.stateDirectory])}`,
    `    ${nasCommandLine(launch)} >/dev/null 2>>${formatCommand([errorLog(launch)])}`,
    '    case $? in 0|2) break ;; esac',
    '    sleep 5',
    '  done',
    ') </dev/null >/dev/null 2>&1 &',
  ];
}

/** The folder of the installed package (…/dist/src/cli/main.js), which the container must see whole. */
function packageRoot(cliPath: string): string {
  const marker = '/dist/src/cli/main.js';
  return cliPath.endsWith(marker) ? cliPath.slice(0, -marker.length) || '/' : path.posix.dirname(cliPath);
}

/** The same program in a container: the paths are mounted at the same places, so the command is unchanged. */
export function nasContainerCommand(launch: NasLaunch): string {
  const mounts = new Map([
    [launch.stateDirectory, launch.stateDirectory],
    [path.posix.dirname(launch.configPath), `${path.posix.dirname(launch.configPath)}:ro`],
    [packageRoot(launch.cliPath), `${packageRoot(launch.cliPath)}:ro`],
  ]);
  return formatCommand([
    'docker', 'run', '-d', '--name', `homeport-${launch.program}`, '--restart', 'unless-stopped', '--network', 'host',
    ...[...mounts].flatMap(([source, target]) => ['-v', `${source}:${target}`]),
    'node:lts-alpine', 'node', launch.cliPath, launch.program, '--config', launch.configPath,
  ]);
}

interface NasGuide {
  name: string;
  /** Why install-service does not install a service here. */
  why: string;
  /** Numbered steps; the boot script follows them. */
  steps: string[];
  /** What removes it again. */
  removal: string;
}

function guide(system: NasSystem, launch: NasLaunch): NasGuide {
  const task = `homeport ${launch.program}`;
  switch (system) {
    case 'synology':
      return {
        name: 'Synology DSM',
        why: 'DSM manages its own services and keeps none added by hand; its Task Scheduler is the supported way to start a program at boot',
        steps: [
          'Control Panel > Task Scheduler > Create > Triggered Task > User-defined script.',
          `General: Task "${task}", User "root", Event "Boot-up", Enabled.`,
          'Task Settings > Run command > User-defined script: paste the boot script below. OK.',
          'Select the task and click Run to start it now, without a reboot.',
        ],
        removal: 'delete the task in the Task Scheduler',
      };
    case 'qnap':
      return {
        name: 'QNAP QTS',
        why: 'QTS has no systemd; it runs autorun.sh, kept on its boot flash, at every start',
        steps: [
          'Control Panel > System > Hardware > General: tick "Run user defined processes during startup", Apply.',
          'Log in with SSH as an administrator and mount the boot configuration: /etc/init.d/init_disk.sh mount_flash_config',
          'Add the boot script below to /tmp/nasconfig_tmp/autorun.sh (a new file starts with the line #!/bin/sh), then: chmod +x /tmp/nasconfig_tmp/autorun.sh',
          'Unmount it, which saves it: /etc/init.d/init_disk.sh umount_flash_config',
          'Paste the boot script into the SSH session once to start it now, without a reboot.',
        ],
        removal: 'remove the lines from autorun.sh the same way (mount_flash_config, edit, umount_flash_config)',
      };
    case 'unraid':
      return {
        name: 'Unraid',
        why: 'Unraid has no systemd and keeps its root file system in memory; node, homeport and the config must live on the flash drive (/boot) or a share (/mnt/user), or they are gone after a reboot',
        steps: [
          'Apps: install the "User Scripts" plugin.',
          `Settings > User Scripts > Add New Script, named "${task.replace(' ', '-')}".`,
          'Edit Script: below its first line (#!/bin/bash), paste the boot script below. Save Changes.',
          'Schedule: "At Startup of Array", Apply. Click "Run in background" to start it now.',
        ],
        removal: 'delete the script in Settings > User Scripts',
      };
    case 'truenas':
      return {
        name: 'TrueNAS SCALE',
        why: 'every TrueNAS SCALE update replaces the system (its /usr is read-only), so a unit added by hand would vanish; Init/Shutdown Scripts are kept in its configuration',
        steps: [
          `Save the boot script below, after a first line #!/bin/sh, as a file on a pool (e.g. /mnt/tank/homeport/start-${launch.program}.sh) and make it executable: chmod +x <file>`,
          'System > Advanced Settings > Init/Shutdown Scripts > Add: Type "Script", Script: that file, When "Post Init", Enabled. Save.',
          'Run the file once to start it now, without a reboot.',
        ],
        removal: 'delete the Init/Shutdown Script',
      };
  }
}

/** The first line: which system, how it was known, why nothing was installed. */
function heading(name: string, why: string, here: NasDetection | undefined): string {
  if (!here) return `For ${name} (--nas): ${why}.`;
  return `This is ${name}${here.version ? ` ${here.version}` : ''} (found ${here.marker}): ${why}.`;
}

/**
 * The printed instructions for a NAS system: why nothing was installed, the exact command line, the steps
 * with the boot script, how to stop it, and the container alternative with its networking warning.
 * `detection` is what this machine is; when it is not `system` (--nas given elsewhere) the paths are this
 * machine's, and the text says so.
 */
export function renderNasGuide(system: NasSystem, launch: NasLaunch, detection: NasDetection | undefined): string[] {
  const { name, why, steps, removal } = guide(system, launch);
  const here = detection?.system === system ? detection : undefined;
  return [
    heading(name, why, here),
    `Nothing was installed. Start the ${launch.program} at boot as follows${here ? '' : ` (the paths are this machine's: run this on the ${name} machine for its own)`}.`,
    '',
    'Command line:',
    `  ${nasCommandLine(launch)}`,
    '',
    `${name}:`,
    ...steps.map((step, i) => `  ${i + 1}. ${step}`),
    '',
    `Boot script (restarts the ${launch.program} 5 s after a crash; stops after a clean stop or a configuration error, whose message goes to ${errorLog(launch)}):`,
    ...nasBootScript(launch).map((line) => `  ${line}`),
    '',
    `To stop it: kill "$(cat ${formatCommand([pidFile(launch)])})"; to remove it: ${removal}.`,
    '',
    'Or in a container (mount any other folder the config names, such as a certDir outside stateDir):',
    `  ${nasContainerCommand(launch)}`,
    'Use host networking (--network host, "Host network" in the NAS app): bridge networking puts a second NAT',
    "in front of homeport, and the port punched through the router leads to the NAS instead of the container.",
  ];
}
