import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createServiceCommands, type ServiceCommandEnvironment } from '../src/cli/install-service.js';
import { type ServicePlatform } from '../src/service/description.js';
import { renderServiceFiles } from '../src/service/files.js';
import { applyPlan, planInstall, planUninstall, rootedFileSystem, type CommandRunner } from '../src/service/installer.js';
import { sampleDescription } from '../src/service/samples.js';
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
  await writeFile(file, AGENT_CONFIG(join(dir, 'state')));
  return { file, dir };
}

test('Linux install: unit files 0644 in /etc/systemd/system, then user, directories, daemon-reload, enable --now service and timer', async () => {
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

test('macOS install: plists root:wheel 0644 in /Library/LaunchDaemons, log directory, enable + bootstrap each job, then the firewall', () => {
  const d = sampleDescription('agent', 'macos');
  const plan = planInstall(d);
  assert.deepEqual(plan.files.map((f) => [f.path, f.mode, f.owner]), [
    ['/Library/LaunchDaemons/org.homeport.agent.plist', 0o644, { uid: 0, gid: 0 }],
    ['/Library/LaunchDaemons/org.homeport.agent.reregister.plist', 0o644, { uid: 0, gid: 0 }],
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
function testCommands(root: string, uid: number, runner: CommandRunner, hostPlatform: ServicePlatform = 'linux') {
  const out: string[] = [];
  const errors: string[] = [];
  const environment: ServiceCommandEnvironment = {
    runner,
    fs: rootedFileSystem(root),
    outputFs: rootedFileSystem,
    getuid: () => uid,
    hostPlatform,
    nodePath: '/usr/bin/node',
    cliPath: '/usr/lib/node_modules/homeport/dist/src/cli/main.js',
    env: { SUDO_USER: 'alice' },
    out: (line) => out.push(line),
    error: (line) => errors.push(line),
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
  const { file, dir } = await agentConfigFile();
  const root = await tempDir('hp-svc-root-');
  const { runner, ran } = recordingRunner();
  const { commands, errors, out } = testCommands(root, 0, runner);
  assert.equal(await commands.install.run(['agent', '--config', file]), 0, errors.join('\n'));
  assert.deepEqual((await filesBelow(root)).sort(), ['etc/systemd/system/homeport-agent-reregister.service', 'etc/systemd/system/homeport-agent-reregister.timer', 'etc/systemd/system/homeport-agent.service']);
  assert.match(await readFile(join(root, 'etc/systemd/system/homeport-agent-reregister.timer'), 'utf8'), /OnCalendar=\*-\*-\* 03:35:00/);
  assert.ok(ran.includes(`install -d -o homeport -m 0750 ${join(dir, 'state')}`));

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
  const { file, dir } = await agentConfigFile();
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
    stateDirectory: join(dir, 'state'),
    workingDirectory: join(dir, 'state'),
    logDirectory: '/Library/Logs/homeport-agent',
    environment: {},
    listenPorts: [25305],
    reregisterCalendar: { hour: 3, minute: 35 },
  });
  assert.deepEqual((await filesBelow(output)).sort(), expected.map((f) => f.name).sort());
  for (const f of expected) assert.equal(await readFile(join(output, f.name), 'utf8'), f.content, f.name);
});

const INSTALL_SERVICE_MODULE = fileURLToPath(new URL('../src/cli/install-service.js', import.meta.url));

/** Runs `homeport install-service <args>` in a child process through the command object main.ts registers. */
function runInstallService(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = `const { installServiceCommand } = await import(${JSON.stringify(INSTALL_SERVICE_MODULE)});
process.exitCode = await installServiceCommand.run(process.argv.slice(1));`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script, ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
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
      assert.deepEqual(written, ['/Library/LaunchDaemons/org.homeport.agent.plist', '/Library/LaunchDaemons/org.homeport.agent.reregister.plist']);
      assert.ok(commands.includes('launchctl bootstrap system /Library/LaunchDaemons/org.homeport.agent.plist'));
      assert.match(run.stdout, /<key>Label<\/key>\n\t<string>org\.homeport\.agent<\/string>/);
    }
  });
}
