import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createServiceCommands, type ServiceCommandEnvironment } from '../../src/cli/install-service.js';
import { type ServicePlatform } from '../../src/service/description.js';
import { renderServiceFiles } from '../../src/service/files.js';
import { applyPlan, planInstall, planUninstall, rootedFileSystem, type CommandRunner } from '../../src/service/installer.js';
import { sampleDescription } from '../../src/service/samples.js';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const scratch: string[] = [];
after(() => Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true }))));

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/** A runner that records every command and fails the ones `failing` matches. */
function recordingRunner(failing: (argv: string[]) => boolean = () => false): { runner: CommandRunner; ran: string[] } {
  const ran: string[] = [];
  const runner: CommandRunner = async (argv) => {
    ran.push(argv.join(' '));
    return failing(argv) ? { code: 5, output: 'Bootstrap failed: 5: Input/output error' } : { code: 0, output: '' };
  };
  return { runner, ran };
}

async function filesBelow(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(join(dir, prefix), { withFileTypes: true });
  const nested = await Promise.all(entries.map((e) => (e.isDirectory() ? filesBelow(dir, join(prefix, e.name)) : [join(prefix, e.name)])));
  return nested.flat();
}

/** Outside /tmp: a Linux service's /tmp is private (PrivateTmp), so install-service refuses a stateDir there. Nothing creates it: the runner is fake. */
const STATE_DIR = '/srv/homeport-test/state';

const AGENT_CONFIG = (stateDir: string): string => `
[agent]
name = "home"
listen = "0.0.0.0:25305"
stateDir = "${stateDir}"
[tls]
mode = "selfsigned"
certDir = "${stateDir}/certs"
hostnames = ["nas.example.com"]
[whitelist]
allow = ["127.0.0.1/32"]
[[route]]
host = "*"
path = "/"
target = "http://127.0.0.1:8096"
[rendezvous]
server = "rv.example.com:7000"
secret = "home-secret-0123456789"
reregister = "0 35 3 * * *"
`;

async function agentConfigFile(): Promise<{ file: string; dir: string }> {
  const dir = await tempDir('hp-svc-cfg-');
  const file = join(dir, 'agent.toml');
  await writeFile(file, AGENT_CONFIG(STATE_DIR));
  return { file, dir };
}

test('Linux install: stop and disable what an earlier install started, unit files 0644 in /etc/systemd/system, then user, directories, daemon-reload, enable --now service and timer', async () => {
  const d = sampleDescription('agent', 'linux');
  const plan = planInstall(d);
  assert.deepEqual(plan.files.map((f) => [f.path, f.mode]), [
    ['/etc/systemd/system/homeport-agent.service', 0o644],
    ['/etc/systemd/system/homeport-agent-reregister.service', 0o644],
    ['/etc/systemd/system/homeport-agent-reregister.timer', 0o644],
  ]);
  const { runner, ran } = recordingRunner();
  const root = await tempDir('hp-svc-root-');
  assert.deepEqual(await applyPlan(plan, { runner, fs: rootedFileSystem(root) }), { ok: true, value: undefined });
  assert.deepEqual(ran, [
    'systemctl disable --now homeport-agent-reregister.timer',
    'systemctl disable --now homeport-agent.service',
    'systemd-sysusers --inline u homeport - "homeport agent"',
    'install -d -o homeport -m 0750 /var/lib/homeport-agent',
    'install -d -o homeport -m 0750 /var/log/homeport-agent',
    'systemctl daemon-reload',
    'systemctl enable --now homeport-agent.service',
    'systemctl enable --now homeport-agent-reregister.timer',
  ]);
  const written = join(root, 'etc/systemd/system/homeport-agent.service');
  assert.equal((await stat(written)).mode & 0o777, 0o644);
  assert.equal(await readFile(written, 'utf8'), renderServiceFiles(d)[0]!.content);
});

test('macOS install: plists and the newsyslog entry root:wheel 0644, state and log directories, enable + bootstrap each job, then the firewall', () => {
  const d = sampleDescription('agent', 'macos');
  const plan = planInstall(d);
  assert.deepEqual(plan.files.map((f) => [f.path, f.mode, f.owner]), [
    ['/Library/LaunchDaemons/org.homeport.agent.plist', 0o644, { uid: 0, gid: 0 }],
    ['/Library/LaunchDaemons/org.homeport.agent.reregister.plist', 0o644, { uid: 0, gid: 0 }],
    ['/etc/newsyslog.d/org.homeport.agent.conf', 0o644, { uid: 0, gid: 0 }],
  ]);
  assert.deepEqual(plan.commands.map((argv) => argv.join(' ')), [
    'install -d -o homeport -m 0750 /usr/local/var/lib/homeport-agent',
    'install -d -o homeport -m 0750 /usr/local/var/log/homeport-agent',
    'launchctl enable system/org.homeport.agent',
    'launchctl bootstrap system /Library/LaunchDaemons/org.homeport.agent.plist',
    'launchctl enable system/org.homeport.agent.reregister',
    'launchctl bootstrap system /Library/LaunchDaemons/org.homeport.agent.reregister.plist',
    '/usr/libexec/ApplicationFirewall/socketfilterfw --add /usr/local/bin/node',
    '/usr/libexec/ApplicationFirewall/socketfilterfw --unblockapp /usr/local/bin/node',
  ]);
  assert.deepEqual(plan.stop.map((argv) => argv.join(' ')), ['launchctl bootout system/org.homeport.agent.reregister', 'launchctl bootout system/org.homeport.agent']);
  assert.ok(plan.notes.some((note) => /firewall.*inbound/.test(note)), 'the firewall step says why');
  assert.ok(plan.notes.some((note) => note.includes('launchctl kickstart -k system/org.homeport.agent')));
});

test('uninstall stops in reverse order, removes every installed file (nothing left in the root), then reloads systemd', async () => {
  for (const platform of ['linux', 'macos'] as ServicePlatform[]) {
    const d = { ...sampleDescription('agent', platform) };
    const root = await tempDir('hp-svc-root-');
    // chown to root:wheel needs root: the test writes the same files without the owner.
    const install = planInstall(d);
    const files = install.files.map(({ owner: _owner, ...file }) => file);
    assert.equal((await applyPlan({ ...install, files }, { runner: recordingRunner().runner, fs: rootedFileSystem(root) })).ok, true);
    assert.equal((await filesBelow(root)).length, files.length);

    const { runner, ran } = recordingRunner();
    assert.equal((await applyPlan(planUninstall(d), { runner, fs: rootedFileSystem(root) })).ok, true);
    assert.deepEqual(await filesBelow(root), [], `${platform}: files left behind`);
    assert.deepEqual(ran, platform === 'linux'
      ? ['systemctl disable --now homeport-agent-reregister.timer', 'systemctl disable --now homeport-agent.service', 'systemctl daemon-reload']
      : ['launchctl bootout system/org.homeport.agent.reregister', 'launchctl bootout system/org.homeport.agent']);
  }
});

test('uninstall of a service that is not running still removes its files', async () => {
  const d = sampleDescription('rendezvous', 'macos');
  const root = await tempDir('hp-svc-root-');
  const files = planInstall(d).files.map(({ owner: _owner, ...file }) => file);
  for (const file of files) await rootedFileSystem(root).write(file);
  const { runner } = recordingRunner((argv) => argv[1] === 'bootout');
  assert.equal((await applyPlan(planUninstall(d), { runner, fs: rootedFileSystem(root) })).ok, true);
  assert.deepEqual(await filesBelow(root), []);
});

test('a failing command stops the plan with a one-line error naming the command', async () => {
  const d = sampleDescription('agent', 'macos');
  const { runner, ran } = recordingRunner((argv) => argv[1] === 'bootstrap');
  const root = await tempDir('hp-svc-root-');
  const plan = planInstall(d);
  const result = await applyPlan({ ...plan, files: plan.files.map(({ owner: _owner, ...file }) => file) }, { runner, fs: rootedFileSystem(root) });
  assert.equal(result.ok, false);
  assert.equal(!result.ok && result.error,
    '"launchctl bootstrap system /Library/LaunchDaemons/org.homeport.agent.plist" failed with exit code 5: Bootstrap failed: 5: Input/output error');
  assert.equal(ran.at(-1), 'launchctl bootstrap system /Library/LaunchDaemons/org.homeport.agent.plist', 'nothing ran after the failure');
});

/** The service commands with everything outside injected; `uid` decides whether it runs as root. */
function testCommands(root: string, uid: number, runner: CommandRunner, hostPlatform: ServicePlatform = 'linux', overrides: Partial<ServiceCommandEnvironment> = {}) {
  const out: string[] = [];
  const errors: string[] = [];
  const environment: ServiceCommandEnvironment = {
    runner,
    fs: rootedFileSystem(root),
    outputFs: rootedFileSystem,
    getuid: () => uid,
    hostPlatform,
    node: { path: '/usr/bin/node', realPath: '/usr/bin/node' },
    cliPath: '/usr/lib/node_modules/homeport/dist/src/cli/main.js',
    env: { SUDO_USER: 'alice' },
    probe: () => undefined,
    out: (line) => out.push(line),
    error: (line) => errors.push(line),
    ...overrides,
  };
  return { commands: createServiceCommands(environment), out, errors };
}

test('install-service without root refuses with one line and exit 2, running and writing nothing', async () => {
  const { file } = await agentConfigFile();
  const root = await tempDir('hp-svc-root-');
  const { runner, ran } = recordingRunner();
  const { commands, errors } = testCommands(root, 1000, runner);
  assert.equal(await commands.install.run(['agent', '--config', file]), 2);
  assert.deepEqual(errors, ['install-service needs root: run it with sudo']);
  assert.deepEqual(ran, []);
  assert.deepEqual(await filesBelow(root), []);
});

test('install-service as root then uninstall-service through the commands: installed, reported running, then gone', async () => {
  const { file } = await agentConfigFile();
  const root = await tempDir('hp-svc-root-');
  const { runner, ran } = recordingRunner();
  const { commands, errors, out } = testCommands(root, 0, runner);
  assert.equal(await commands.install.run(['agent', '--config', file]), 0, errors.join('\n'));
  assert.deepEqual((await filesBelow(root)).sort(), ['etc/systemd/system/homeport-agent-reregister.service', 'etc/systemd/system/homeport-agent-reregister.timer', 'etc/systemd/system/homeport-agent.service']);
  assert.match(await readFile(join(root, 'etc/systemd/system/homeport-agent-reregister.timer'), 'utf8'), /OnCalendar=\*-\*-\* 03:35:00/);
  assert.ok(ran.includes(`install -d -o homeport -m 0750 ${STATE_DIR}`));

  assert.equal(await commands.status.run(['agent', '--config', file]), 0);
  assert.ok(out.includes('installed  /etc/systemd/system/homeport-agent.service'));
  assert.ok(out.includes('systemctl is-active homeport-agent.service: ok'));

  assert.equal(await commands.uninstall.run(['agent', '--config', file]), 0);
  assert.deepEqual(await filesBelow(root), []);
  assert.equal(await commands.status.run(['agent', '--config', file]), 1, 'status reports the removed service');
});

test('--platform macos on a Linux host is refused unless only rendering, naming the flags that fix it', async () => {
  const { file } = await agentConfigFile();
  const { commands, errors } = testCommands(await tempDir('hp-svc-root-'), 0, recordingRunner().runner);
  assert.equal(await commands.install.run(['agent', '--config', file, '--platform', 'macos']), 2);
  assert.match(errors[0]!, /--platform macos differs from this system \(linux\): add --print or --output-dir/);
});

test('--output-dir writes exactly the rendered service files and runs nothing', async () => {
  const { file } = await agentConfigFile();
  const output = await tempDir('hp-svc-out-');
  const { runner, ran } = recordingRunner();
  const { commands } = testCommands(await tempDir('hp-svc-root-'), 1000, runner, 'linux');
  assert.equal(await commands.install.run(['agent', '--config', file, '--platform', 'macos', '--output-dir', output]), 0);
  assert.deepEqual(ran, []);
  const expected = renderServiceFiles({
    ...sampleDescription('agent', 'macos'),
    nodePath: '/usr/bin/node',
    cliPath: '/usr/lib/node_modules/homeport/dist/src/cli/main.js',
    configPath: file,
    user: 'alice',
    stateDirectory: STATE_DIR,
    workingDirectory: STATE_DIR,
    logDirectory: '/Library/Logs/homeport-agent',
    environment: {},
    listenPorts: [25305],
    reregisterCalendar: { hour: 3, minute: 35 },
  });
  assert.deepEqual((await filesBelow(output)).sort(), expected.map((f) => f.name).sort());
  for (const f of expected) assert.equal(await readFile(join(output, f.name), 'utf8'), f.content, f.name);
});

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** Runs `homeport <args>` in a child process, as a user would. */
function runHomeport(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

function runInstallService(args: string[]) {
  return runHomeport(['install-service', ...args]);
}

for (const platform of ['linux', 'macos'] as const) {
  test(`the CLI with --print --platform ${platform} writes nothing and lists every file with its path and every command`, async () => {
    const { file, dir } = await agentConfigFile();
    const before = await filesBelow(dir);
    const run = await runInstallService(['agent', '--config', file, '--print', '--platform', platform]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(await filesBelow(dir), before, 'nothing written next to the config');
    const written = [...run.stdout.matchAll(/^would write: (\S+)/gm)].map((m) => m[1]);
    const commands = [...run.stdout.matchAll(/^would run: (.*)$/gm)].map((m) => m[1]!);
    if (platform === 'linux') {
      assert.deepEqual(written, ['/etc/systemd/system/homeport-agent.service', '/etc/systemd/system/homeport-agent-reregister.service', '/etc/systemd/system/homeport-agent-reregister.timer']);
      assert.deepEqual(commands.slice(-3), ['systemctl daemon-reload', 'systemctl enable --now homeport-agent.service', 'systemctl enable --now homeport-agent-reregister.timer']);
      assert.match(run.stdout, /^ExecStart=\S+ \S+main\.js agent --config /m);
    } else {
      assert.deepEqual(written, ['/Library/LaunchDaemons/org.homeport.agent.plist', '/Library/LaunchDaemons/org.homeport.agent.reregister.plist', '/etc/newsyslog.d/org.homeport.agent.conf']);
      assert.ok(commands.includes('launchctl bootstrap system /Library/LaunchDaemons/org.homeport.agent.plist'));
      assert.match(run.stdout, /<key>Label<\/key>\n\t<string>org\.homeport\.agent<\/string>/);
    }
  });
}

test('a Linux stateDir under /tmp or /var/tmp is refused with one line naming stateDir and the fix, exit 2; macOS takes it', async () => {
  for (const stateDir of ['/tmp/homeport-state', '/var/tmp/homeport']) {
    const dir = await tempDir('hp-svc-cfg-');
    const file = join(dir, 'agent.toml');
    await writeFile(file, AGENT_CONFIG(stateDir));
    const linux = await runInstallService(['agent', '--config', file, '--print', '--platform', 'linux']);
    assert.equal(linux.code, 2);
    assert.equal(linux.stdout, '');
    const lines = linux.stderr.trim().split('\n');
    assert.equal(lines.length, 1, linux.stderr);
    assert.match(lines[0]!, new RegExp(`stateDir "${stateDir}" \\(the config's stateDir\\) is under /(var/)?tmp: .*PrivateTmp=yes.*set stateDir to a lasting directory, e\\.g\\. stateDir = "/var/lib/homeport-agent"`));
    const mac = await runInstallService(['agent', '--config', file, '--print', '--platform', 'macos']);
    assert.equal(mac.code, 0, mac.stderr);
  }
});

test('a stateDir that is a system directory (e.g. /opt) is refused with one line naming stateDir and the fix, exit 2: nothing would chown it', async () => {
  for (const stateDir of ['/opt', '/var/lib']) {
    const dir = await tempDir('hp-svc-cfg-');
    const file = join(dir, 'agent.toml');
    await writeFile(file, AGENT_CONFIG(stateDir).replace(`certDir = "${stateDir}/certs"`, 'certDir = "/etc/homeport/certs"'));
    for (const platform of ['linux', 'macos']) {
      const run = await runInstallService(['agent', '--config', file, '--print', '--platform', platform]);
      assert.equal(run.code, 2, `${platform} ${stateDir}: ${run.stdout}`);
      assert.equal(run.stdout, '');
      const lines = run.stderr.trim().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, new RegExp(`stateDir "${stateDir}" \\(the config's stateDir\\) is a system directory: .*set stateDir to a directory of homeport's own, e\\.g\\. stateDir = "/var/lib/homeport-agent"`));
    }
  }
});

test('the [admin] listen port counts: a port below 1024 there gets CAP_NET_BIND_SERVICE, as the agent\'s own listen port does', async () => {
  const capability = /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m;
  const { file } = await agentConfigFile();
  const plain = await runInstallService(['agent', '--config', file, '--print', '--platform', 'linux']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.doesNotMatch(plain.stdout, capability, 'no privileged port, no capability');
  for (const [listen, expected] of [['0.0.0.0:443', true], ['127.0.0.1:7443', false], ['127.0.0.1:0', false]] as const) {
    await writeFile(file, `${AGENT_CONFIG(STATE_DIR)}[admin]\nlisten = "${listen}"\n`);
    const run = await runInstallService(['agent', '--config', file, '--print', '--platform', 'linux']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(capability.test(run.stdout), expected, `[admin] listen = "${listen}"`);
  }
});

/** The marker files of each NAS system, as a fake probe of this machine. */
const NAS_MARKERS = {
  synology: { '/etc/synoinfo.conf': '', '/etc.defaults/VERSION': 'productversion="7.2.1"\n' },
  qnap: { '/etc/config/qpkg.conf': '' },
  unraid: { '/etc/unraid-version': 'version="6.12.10"\n' },
  truenas: { '/etc/version': '24.10.2\n', '/usr/bin/midclt': '' },
} as const;

test('install-service on a detected NAS installs nothing, even as root, and prints its steps with the exact command line', async () => {
  const { file } = await agentConfigFile();
  const places = { synology: 'Task Scheduler', qnap: 'autorun.sh', unraid: 'User Scripts', truenas: 'Init/Shutdown Scripts' };
  for (const [system, markers] of Object.entries(NAS_MARKERS) as [keyof typeof NAS_MARKERS, Record<string, string>][]) {
    const root = await tempDir('hp-svc-root-');
    const { runner, ran } = recordingRunner();
    const { commands, out, errors } = testCommands(root, 0, runner, 'linux', { probe: (p) => markers[p] });
    assert.equal(await commands.install.run(['agent', '--config', file]), 0, errors.join('\n'));
    assert.deepEqual(ran, [], `${system}: nothing run`);
    assert.deepEqual(await filesBelow(root), [], `${system}: nothing written`);
    const text = out.join('\n');
    assert.match(text, /Nothing was installed/);
    assert.ok(text.includes(places[system]), `${system}: ${places[system]}`);
    assert.ok(text.includes(`/usr/bin/node /usr/lib/node_modules/homeport/dist/src/cli/main.js agent --config ${file} --pid-file ${STATE_DIR}/agent.pid`), `${system}: the command line`);
    assert.match(text, /bridge networking puts a second NAT/);
  }
});

test('--nas prints a system\'s steps on any machine; it excludes --platform and --output-dir; an unknown one is a usage error', async () => {
  const { file } = await agentConfigFile();
  const { runner, ran } = recordingRunner();
  const { commands, out } = testCommands(await tempDir('hp-svc-root-'), 1000, runner, 'macos');
  assert.equal(await commands.install.run(['agent', '--config', file, '--nas', 'unraid']), 0);
  assert.deepEqual(ran, []);
  assert.match(out[0]!, /^For Unraid \(--nas\): /);
  assert.match(out.join('\n'), /"At Startup of Array"/);
  await assert.rejects(commands.install.run(['agent', '--config', file, '--nas', 'freenas']), /--nas "freenas": use "synology", "qnap", "unraid", "truenas"/);
  await assert.rejects(commands.install.run(['agent', '--config', file, '--nas', 'qnap', '--platform', 'linux']), /--nas and --platform exclude each other/);
  await assert.rejects(commands.install.run(['agent', '--config', file, '--nas', 'qnap', '--output-dir', '/tmp/x']), /--nas and --output-dir exclude each other/);
});

test('on a NAS, --output-dir still renders the service files it is asked for', async () => {
  const { file } = await agentConfigFile();
  const output = await tempDir('hp-svc-out-');
  const { commands } = testCommands(await tempDir('hp-svc-root-'), 1000, recordingRunner().runner, 'linux', { probe: (p) => (NAS_MARKERS.qnap as Record<string, string>)[p] });
  assert.equal(await commands.install.run(['agent', '--config', file, '--output-dir', output]), 0);
  assert.deepEqual((await filesBelow(output)).sort(), ['homeport-agent-reregister.service', 'homeport-agent-reregister.timer', 'homeport-agent.service']);
});

test('uninstall-service and service-status need no --config: the program names every file and job', async () => {
  for (const platform of ['linux', 'macos'] as ServicePlatform[]) {
    const { file } = await agentConfigFile();
    const root = await tempDir('hp-svc-root-');
    const { runner, ran } = recordingRunner();
    // chown to root:wheel needs root: the macOS run writes the files without changing their owner.
    const fs = rootedFileSystem(root);
    const { commands, out, errors } = testCommands(root, 0, runner, platform, { fs: { ...fs, write: ({ owner: _owner, ...f }) => fs.write(f) } });
    assert.equal(await commands.install.run(['agent', '--config', file]), 0, errors.join('\n'));
    const installed = (await filesBelow(root)).sort();
    assert.equal(installed.length, 3, `${platform}: ${installed.join(', ')}`);

    out.length = 0;
    assert.equal(await commands.status.run(['agent']), 0, out.join('\n'));
    assert.equal(out.filter((line) => line.startsWith('installed  ')).length, 3, `${platform}: the backstop is found by its files`);

    ran.length = 0;
    out.length = 0;
    assert.equal(await commands.uninstall.run(['agent']), 0, errors.join('\n'));
    assert.deepEqual(await filesBelow(root), [], `${platform}: files left behind`);
    assert.equal(ran.length, platform === 'linux' ? 3 : 2, ran.join('\n'));
    assert.ok(out.some((line) => line.includes('the state (stateDir in the config)')), 'without the config, the state directory is named by its key');
    assert.equal(await commands.status.run(['agent']), 1);
  }
});

test('uninstall-service without a config removes the backstop too, so a changed config leaves nothing behind', async () => {
  const { commands, out } = testCommands(await tempDir('hp-svc-root-'), 1000, recordingRunner().runner, 'linux');
  assert.equal(await commands.uninstall.run(['agent', '--print', '--platform', 'macos']), 0);
  assert.deepEqual(out.filter((line) => line.startsWith('would remove: ')), [
    'would remove: /Library/LaunchDaemons/org.homeport.agent.plist',
    'would remove: /Library/LaunchDaemons/org.homeport.agent.reregister.plist',
    'would remove: /etc/newsyslog.d/org.homeport.agent.conf',
  ]);
});

test('a Homebrew node: the plist names the stable opt link, the firewall allows the real binary, and the plan says so', async () => {
  const { file } = await agentConfigFile();
  const cellar = '/opt/homebrew/Cellar/node/22.3.0/bin/node';
  const { commands, out } = testCommands(await tempDir('hp-svc-root-'), 0, recordingRunner().runner, 'macos', {
    node: { path: '/opt/homebrew/opt/node/bin/node', realPath: cellar },
  });
  assert.equal(await commands.install.run(['agent', '--config', file, '--print']), 0);
  const text = out.join('\n');
  assert.match(text, /<key>ProgramArguments<\/key>\n\t<array>\n\t\t<string>\/opt\/homebrew\/opt\/node\/bin\/node<\/string>/);
  assert.ok(out.includes(`would run: /usr/libexec/ApplicationFirewall/socketfilterfw --add ${cellar}`));
  assert.ok(out.includes(`would run: /usr/libexec/ApplicationFirewall/socketfilterfw --unblockapp ${cellar}`));
  assert.match(text, /^note: the application firewall lets \/opt\/homebrew\/Cellar\/node\/22\.3\.0\/bin\/node accept inbound connections: the punched port must reach the agent; after upgrading node run install-service again/m);

  const explained = testCommands(await tempDir('hp-svc-root-'), 0, recordingRunner().runner, 'macos', {
    node: { path: cellar, realPath: cellar, note: 'node is in the Cellar, which "brew upgrade" replaces' },
  });
  assert.equal(await explained.commands.install.run(['agent', '--config', file, '--print']), 0);
  assert.ok(explained.out.includes('note: node is in the Cellar, which "brew upgrade" replaces'));
});

/** A launchctl that remembers what is loaded: bootstrap of a loaded job fails (error 5), as the real one does. */
function fakeLaunchctl(): CommandRunner {
  const loaded = new Set<string>();
  return async ([program, verb, ...args]) => {
    if (program !== 'launchctl') return { code: 0, output: '' };
    if (verb === 'bootstrap') {
      const label = args[1]!.replace(/^.*\//, '').replace(/\.plist$/, '');
      if (loaded.has(label)) return { code: 5, output: 'Bootstrap failed: 5: Input/output error' };
      loaded.add(label);
    }
    if (verb === 'bootout' && !loaded.delete(args[0]!.replace('system/', ''))) return { code: 3, output: 'Boot-out failed: 3: No such process' };
    return { code: 0, output: '' };
  };
}

test('installing a second time (after a config change or a node upgrade) replaces the loaded jobs instead of failing', async () => {
  const d = sampleDescription('agent', 'macos');
  const root = await tempDir('hp-svc-root-');
  const runner = fakeLaunchctl();
  const plan = planInstall(d);
  const files = plan.files.map(({ owner: _owner, ...file }) => file);
  assert.deepEqual(await applyPlan({ ...plan, files }, { runner, fs: rootedFileSystem(root) }), { ok: true, value: undefined });
  assert.deepEqual(await applyPlan({ ...plan, files }, { runner, fs: rootedFileSystem(root) }), { ok: true, value: undefined });
  // Without the stop step the same fake refuses, so the test would notice it missing.
  const unstopped = await applyPlan({ ...plan, stop: [], files }, { runner, fs: rootedFileSystem(root) });
  assert.equal(unstopped.ok, false);
});

test('an install without the backstop removes the one an earlier install left (the config dropped its daily time)', async () => {
  for (const platform of ['linux', 'macos'] as ServicePlatform[]) {
    const withJob = sampleDescription('agent', platform);
    const { reregisterCalendar: _dropped, ...withoutJob } = withJob;
    const root = await tempDir('hp-svc-root-');
    const strip = (plan: ReturnType<typeof planInstall>) => ({ ...plan, files: plan.files.map(({ owner: _owner, ...file }) => file) });
    assert.equal((await applyPlan(strip(planInstall(withJob)), { runner: recordingRunner().runner, fs: rootedFileSystem(root) })).ok, true);
    const { runner, ran } = recordingRunner();
    assert.equal((await applyPlan(strip(planInstall(withoutJob)), { runner, fs: rootedFileSystem(root) })).ok, true);
    const left = (await filesBelow(root)).sort();
    assert.deepEqual(left, platform === 'linux'
      ? ['etc/systemd/system/homeport-agent.service']
      : ['Library/LaunchDaemons/org.homeport.agent.plist', 'etc/newsyslog.d/org.homeport.agent.conf']);
    assert.ok(ran.some((line) => /(disable --now homeport-agent-reregister\.timer|bootout system\/org\.homeport\.agent\.reregister)$/.test(line)), `${platform}: the old backstop is stopped`);
    assert.ok(!ran.some((line) => /reregister/.test(line) && /(enable|bootstrap)/.test(line)), `${platform}: and not started again`);
  }
});
