import { describeService, type ServiceDescription, type ServiceInputs, type ServicePlatform, type ServiceProgram } from './description.js';
import { renderServiceFiles } from './files.js';

/**
 * Sample descriptions behind the repository's service/ folder: a reader sees the generated files without
 * running anything. The install prefix has a space and a "%" so the escaping shows (and is tested).
 */

export const SAMPLE_PREFIX = '/opt/home port/100%';

const PLATFORM_PATHS: Record<ServicePlatform, { node: string; state: string; log: string }> = {
  linux: { node: '/usr/bin/node', state: '/var/lib', log: '/var/log' },
  macos: { node: '/usr/local/bin/node', state: '/usr/local/var/lib', log: '/usr/local/var/log' },
};

const PROGRAM_PORTS: Record<ServiceProgram, number[]> = { agent: [8443], rendezvous: [443, 7000] };

function sampleInputs(program: ServiceProgram, platform: ServicePlatform): ServiceInputs {
  const paths = PLATFORM_PATHS[platform];
  return {
    program,
    platform,
    nodePath: paths.node,
    cliPath: `${SAMPLE_PREFIX}/lib/node_modules/homeport/dist/src/cli/main.js`,
    configPath: `${SAMPLE_PREFIX}/etc/${program}.toml`,
    user: 'homeport',
    stateDirectory: `${paths.state}/homeport-${program}`,
    logDirectory: `${paths.log}/homeport-${program}`,
    environment: { NODE_ENV: 'production' },
    listenPorts: PROGRAM_PORTS[program],
    ...(program === 'agent' && { reregisterCalendar: { hour: 4, minute: 20 } }),
  };
}

export function sampleDescription(program: ServiceProgram, platform: ServicePlatform): ServiceDescription {
  const described = describeService(sampleInputs(program, platform));
  if (!described.ok) throw new Error(`sample ${program}/${platform}: ${described.error}`);
  return described.value;
}

export const SAMPLE_PLATFORMS: ServicePlatform[] = ['linux', 'macos'];
export const SAMPLE_PROGRAMS: ServiceProgram[] = ['agent', 'rendezvous'];

/** The service/ folder's generated files, keyed by their path inside it ("linux/homeport-agent.service"). */
export function sampleServiceFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const platform of SAMPLE_PLATFORMS) {
    for (const program of SAMPLE_PROGRAMS) {
      for (const file of renderServiceFiles(sampleDescription(program, platform))) files[`${platform}/${file.name}`] = file.content;
    }
  }
  return files;
}
