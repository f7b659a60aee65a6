import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import {
  checkNasLaunch,
  detectNas,
  nasBootScript,
  nasCommandLine,
  nasContainerCommand,
  renderNasGuide,
  type MarkerProbe,
  type NasDetection,
  type NasLaunch,
} from '../../src/service/nas.js';

/** A probe of a fake file system: the files that exist and their text. */
function fakeProbe(files: Record<string, string>): MarkerProbe {
  return (filePath) => files[filePath];
}

test('detectNas tells each NAS system by its marker files and reads the version where it is written', () => {
  const cases: [string, Record<string, string>, NasDetection | undefined][] = [
    ['plain Debian', { '/etc/os-release': 'ID=debian\n', '/etc/debian_version': '12.5\n' }, undefined],
    ['Synology DSM 7', { '/etc/synoinfo.conf': 'unique="synology_x86_64"\n', '/etc.defaults/VERSION': 'majorversion="7"\nproductversion="7.2.1"\nbuildnumber="69057"\n' },
      { system: 'synology', marker: '/etc/synoinfo.conf', version: '7.2.1' }],
    ['Synology with only VERSION', { '/etc.defaults/VERSION': 'productversion="6.2.4"\n' }, { system: 'synology', marker: '/etc.defaults/VERSION', version: '6.2.4' }],
    ['Synology without a readable version', { '/etc/synoinfo.conf': '' }, { system: 'synology', marker: '/etc/synoinfo.conf' }],
    ['QNAP by qpkg.conf', { '/etc/config/qpkg.conf': '[Container]\nName = container-station\n' }, { system: 'qnap', marker: '/etc/config/qpkg.conf' }],
    ['QNAP by platform.conf', { '/etc/platform.conf': 'Platform = TS-X64\n' }, { system: 'qnap', marker: '/etc/platform.conf' }],
    ['Unraid', { '/etc/unraid-version': 'version="6.12.10"\n' }, { system: 'unraid', marker: '/etc/unraid-version', version: '6.12.10' }],
    ['TrueNAS SCALE', { '/etc/version': '24.10.2\n', '/usr/bin/midclt': '' }, { system: 'truenas', marker: '/etc/version and /usr/bin/midclt', version: '24.10.2' }],
    ['another appliance with /etc/version only', { '/etc/version': 'devel-20141031232437-r19505\n' }, undefined],
    ['midclt without /etc/version', { '/usr/bin/midclt': '' }, undefined],
  ];
  for (const [name, files, expected] of cases) assert.deepEqual(detectNas(fakeProbe(files)), expected, name);
});

const LAUNCH: NasLaunch = {
  program: 'agent',
  nodePath: '/volume1/@appstore/Node.js_v20/usr/local/bin/node',
  cliPath: '/volume1/homeport/dist/src/cli/main.js',
  configPath: '/volume1/homeport/agent.toml',
  stateDirectory: '/volume1/homeport/state',
};

test('the command line names node, the cli, the config and a pid file by absolute paths, quoted for sh', () => {
  assert.equal(nasCommandLine(LAUNCH),
    '/volume1/@appstore/Node.js_v20/usr/local/bin/node /volume1/homeport/dist/src/cli/main.js agent --config /volume1/homeport/agent.toml --pid-file /volume1/homeport/state/agent.pid');
  const spaced = { ...LAUNCH, configPath: "/share/My Files/it's/agent.toml" };
  assert.match(nasCommandLine(spaced), / --config '\/share\/My Files\/it'\\''s\/agent\.toml' /);
});

test('the boot script is valid sh with awkward paths, returns at once and stops on exit 0 or 2 only', () => {
  const awkward = { ...LAUNCH, nodePath: '/share/a b/$HOME/node', configPath: '/share/"q"/100%/agent.toml', stateDirectory: "/share/it's/state" };
  const script = nasBootScript(awkward).join('\n');
  const syntax = spawnSync('sh', ['-n', '-c', script], { encoding: 'utf8' });
  assert.equal(syntax.status, 0, syntax.stderr);
  assert.match(script, /case \$\? in 0\|2\) break ;; esac/);
  assert.match(script, /\) <\/dev\/null >\/dev\/null 2>&1 &$/, 'runs in the background, so a boot task with a time limit returns');
  assert.ok(script.includes(nasCommandLine(awkward)), 'the boot script runs the printed command line');
});

test('the container command uses host networking and mounts each path at the same place', () => {
  const command = nasContainerCommand(LAUNCH);
  assert.match(command, / --network host /);
  assert.match(command, / --restart unless-stopped /);
  assert.match(command, / -v \/volume1\/homeport\/state:\/volume1\/homeport\/state /);
  assert.match(command, / -v \/volume1\/homeport:\/volume1\/homeport:ro /, 'the config folder and the package root are the same folder: one mount');
  assert.equal(command.match(/ -v /g)?.length, 2);
  assert.match(command, / node \/volume1\/homeport\/dist\/src\/cli\/main\.js agent --config \/volume1\/homeport\/agent\.toml$/);
});

test('each guide names its system\'s place to start programs at boot, the command line and the bridge-networking warning', () => {
  const expectations = {
    synology: [/Task Scheduler > Create > Triggered Task > User-defined script/, /User "root", Event "Boot-up"/],
    qnap: [/Run user defined processes during startup/, /init_disk\.sh mount_flash_config/, /autorun\.sh/],
    unraid: [/"User Scripts" plugin/, /"At Startup of Array"/],
    truenas: [/Init\/Shutdown Scripts/, /"Post Init"/],
  } as const;
  for (const [system, patterns] of Object.entries(expectations) as [keyof typeof expectations, readonly RegExp[]][]) {
    const text = renderNasGuide(system, LAUNCH, { system, marker: '/etc/x' }).join('\n');
    for (const pattern of patterns) assert.match(text, pattern, system);
    assert.ok(text.includes(`  ${nasCommandLine(LAUNCH)}\n`), `${system}: the exact command line`);
    assert.match(text, /host networking.*bridge networking puts a second NAT/s, system);
    assert.match(text, /^This is .* \(found \/etc\/x\): /, system);
    assert.doesNotMatch(text, /this machine's/, `${system}: detected here, so the paths are right`);
  }
  const forced = renderNasGuide('qnap', LAUNCH, undefined).join('\n');
  assert.match(forced, /^For QNAP QTS \(--nas\): /);
  assert.match(forced, /the paths are this machine's: run this on the QNAP QTS machine for its own/);
});

test('a relative path or a version manager\'s node is refused for a NAS too', () => {
  const problems = checkNasLaunch({ ...LAUNCH, configPath: 'agent.toml', nodePath: '/root/.nvm/versions/node/v20.11.0/bin/node' });
  assert.equal(problems.ok, false);
  const lines = problems.ok ? [] : problems.error.split('\n');
  assert.equal(lines.length, 2);
  assert.match(lines[0]!, /^configPath "agent\.toml": is relative/);
  assert.match(lines[1]!, /Node version manager \(\.nvm\)/);
  assert.deepEqual(checkNasLaunch(LAUNCH), { ok: true, value: LAUNCH });
});
