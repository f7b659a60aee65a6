import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import type { ServiceDescription } from '../../src/service/description.js';
import { renderServiceFiles } from '../../src/service/files.js';
import { sampleDescription } from '../../src/service/samples.js';
import { environmentLine, execLine, onCalendar, renderSystemdTimer, renderSystemdUnit } from '../../src/service/systemd.js';
import { missingTool } from '../helpers/tools.js';

const skip = missingTool('systemd-analyze');
const HOST_UNITS = ['/usr/lib/systemd/system', '/lib/systemd/system'];

function analyze(args: string[]) {
  return spawnSync('systemd-analyze', args, { encoding: 'utf8', timeout: 30_000 });
}

function settings(unit: string, key: string): string[] {
  return unit.split('\n').filter((line) => line.startsWith(`${key}=`)).map((line) => line.slice(key.length + 1));
}

/** The linux samples plus one whose paths need every escape (space, "%", "$", quotes). */
function linuxDescriptions(): ServiceDescription[] {
  const agent = sampleDescription('agent', 'linux');
  return [agent, sampleDescription('rendezvous', 'linux'), { ...agent, label: 'homeport-odd', nodePath: '/opt/odd dir/100%/$HOME/node', cliPath: `/opt/odd dir/"q" 'a'\\b/main.js` }];
}

/** A fake root holding the units, stubs of every binary they start and the host's standard targets. */
async function fakeRoot(descriptions: ServiceDescription[]): Promise<{ root: string; units: string[] }> {
  const root = await mkdtemp(join(tmpdir(), 'homeport-systemd-'));
  const unitDir = join(root, 'etc/systemd/system');
  const targetDir = join(root, 'usr/lib/systemd/system');
  await mkdir(unitDir, { recursive: true });
  await mkdir(targetDir, { recursive: true });
  const hostUnits = HOST_UNITS.find((dir) => spawnSync('test', ['-d', dir]).status === 0)!;
  for (const name of (await readdir(hostUnits)).filter((n) => n.endsWith('.target'))) await copyFile(join(hostUnits, name), join(targetDir, name));
  const units: string[] = [];
  for (const d of descriptions) {
    for (const binary of [d.nodePath, d.cliPath, '/bin/kill']) {
      await mkdir(join(root, dirname(binary)), { recursive: true });
      await writeFile(join(root, binary), '#!/bin/sh\n');
      await chmod(join(root, binary), 0o755);
    }
    for (const file of renderServiceFiles(d)) {
      await writeFile(join(unitDir, file.name), file.content);
      units.push(file.name);
    }
  }
  return { root, units };
}

test('ExecStart words escape "%" and "$" and quote spaces, quotes and backslashes', () => {
  assert.equal(execLine(['/usr/bin/node', 'agent', '--config', '/etc/homeport/agent.toml']), '/usr/bin/node agent --config /etc/homeport/agent.toml');
  assert.equal(execLine(['/opt/a b/node', '/x/100%/$HOME', 'say "hi"', 'back\\slash', '']), '"/opt/a b/node" /x/100%%/$$HOME "say \\"hi\\"" "back\\\\slash" ""');
  assert.equal(execLine(['/opt/$x/node']), '/opt/$x/node', 'the executable path is not variable-expanded');
  assert.equal(environmentLine('A', 'x y "q" 5% $HOME'), 'Environment="A=x y \\"q\\" 5%% $HOME"');
  assert.equal(environmentLine('NODE_ENV', 'production'), 'Environment=NODE_ENV=production');
});

test('the unit restarts, stops on a config error, waits for the network and never denies W^X memory', () => {
  const unit = renderSystemdUnit(sampleDescription('agent', 'linux'));
  // Readiness comes from `systemd-notify --ready`, a child of the daemon: only NotifyAccess=all accepts it.
  assert.deepEqual(settings(unit, 'Type'), ['notify']);
  assert.deepEqual(settings(unit, 'NotifyAccess'), ['all']);
  assert.deepEqual(settings(unit, 'Restart'), ['always']);
  assert.deepEqual(settings(unit, 'RestartSec'), ['5']);
  assert.deepEqual(settings(unit, 'RestartPreventExitStatus'), ['2']);
  assert.deepEqual(settings(unit, 'Wants'), ['network-online.target']);
  assert.deepEqual(settings(unit, 'After'), ['network-online.target']);
  assert.deepEqual(settings(unit, 'User'), ['homeport']);
  assert.deepEqual(settings(unit, 'StateDirectory'), ['homeport-agent']);
  assert.deepEqual(settings(unit, 'LogsDirectory'), ['homeport-agent']);
  assert.equal(settings(unit, 'StartLimitBurst').length, 1);
  assert.equal(settings(unit, 'MemoryDenyWriteExecute').length, 0);
  assert.deepEqual(settings(unit, 'ProtectHome'), ['true']);
});

test('CAP_NET_BIND_SERVICE only when a port is below 1024', () => {
  const agent = renderSystemdUnit(sampleDescription('agent', 'linux')); // 8443
  const rendezvous = renderSystemdUnit(sampleDescription('rendezvous', 'linux')); // 443, 7000
  assert.deepEqual(settings(agent, 'AmbientCapabilities'), ['']);
  assert.deepEqual(settings(agent, 'CapabilityBoundingSet'), ['']);
  assert.deepEqual(settings(rendezvous, 'AmbientCapabilities'), ['CAP_NET_BIND_SERVICE']);
  assert.deepEqual(settings(rendezvous, 'CapabilityBoundingSet'), ['CAP_NET_BIND_SERVICE']);
});

test('directories systemd cannot manage become ReadWritePaths; /etc config becomes ConfigurationDirectory', () => {
  const d = { ...sampleDescription('agent', 'linux'), stateDirectory: '/srv/home port/state', configPath: '/etc/homeport/agent.toml' };
  const unit = renderSystemdUnit(d);
  assert.deepEqual(settings(unit, 'StateDirectory'), []);
  assert.deepEqual(settings(unit, 'ReadWritePaths'), ['"/srv/home port/state"']);
  assert.deepEqual(settings(unit, 'ConfigurationDirectory'), ['homeport']);
});

test('systemd-analyze verify accepts every generated unit in a fake root, without a word on stderr', { skip }, async () => {
  const { root, units } = await fakeRoot(linuxDescriptions());
  try {
    const result = analyze(['verify', `--root=${root}`, ...units]);
    assert.equal(result.stderr, '');
    assert.equal(result.status, 0);
    // The same check must fail when a binary the unit starts is missing, or it proves nothing.
    await rm(join(root, '/opt/odd dir'), { recursive: true });
    const missing = analyze(['verify', `--root=${root}`, 'homeport-odd.service']);
    assert.match(missing.stderr, /Command \/opt\/odd dir\/100%\/\$HOME\/node is not executable/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('systemd-analyze security rates every service at an exposure of 3.0 or less', { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'homeport-security-'));
  try {
    for (const d of linuxDescriptions().slice(0, 2)) {
      for (const file of renderServiceFiles(d).filter((f) => f.name.endsWith('.service'))) {
        await writeFile(join(dir, file.name), file.content);
        const result = analyze(['security', '--offline=true', '--no-pager', join(dir, file.name)]);
        const exposure = /Overall exposure level for \S+: (\d+\.\d+)/.exec(result.stdout + result.stderr);
        assert.ok(exposure, `no exposure level for ${file.name}: ${result.stdout}${result.stderr}`);
        assert.ok(Number(exposure[1]) <= 3.0, `${file.name}: exposure ${exposure[1]} above 3.0`);
        console.log(`# ${file.name}: exposure ${exposure[1]}`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('systemd-analyze calendar accepts the timer\'s OnCalendar as the daily time', { skip }, () => {
  const agent = sampleDescription('agent', 'linux');
  assert.ok(agent.reregisterCalendar);
  const timer = renderSystemdTimer({ ...agent, reregisterCalendar: agent.reregisterCalendar });
  const [calendar] = settings(timer, 'OnCalendar');
  assert.equal(calendar, onCalendar({ ...agent, reregisterCalendar: agent.reregisterCalendar }));
  const result = analyze(['calendar', calendar!]);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /Normalized form: \*-\*-\* 04:20:00/);
});
