import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentConfigArgument, commandTextNamesConfig, identifyAgentProcess } from '../../src/cli/reregister.js';
import { runCli } from '../helpers/cli.js';

const AGENT_TOML = `
[agent]
name = "home"
listen = "127.0.0.1:0"
stateDir = "./state"
[[route]]
target = "http://127.0.0.1:9"
[rendezvous]
server = "127.0.0.1:9"
secret = "pid-check-secret-0123456789"
`;

/** A config folder whose status.json names `pid`, as a stopped agent leaves it. */
async function configWithStalePid(t: { after(fn: () => Promise<void>): void }, pid: number): Promise<{ dir: string; config: string; statusFile: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-rereg-pid-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'agent.toml');
  await writeFile(config, AGENT_TOML);
  await mkdir(join(dir, 'state'));
  const statusFile = join(dir, 'state', 'status.json');
  await writeFile(statusFile, JSON.stringify({ agent: 'home', localPort: 1, connected: true, addressChanges: 0, updatedAt: new Date().toISOString(), pid }));
  return { dir, config, statusFile };
}

/** A long-running process that is not an agent; stopped after the test. */
function startSleep(t: { after(fn: () => unknown): void }): ChildProcess {
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  return child;
}

/** Still running `ms` after the moment a signal would have reached it. */
async function survives(child: ChildProcess, ms = 300): Promise<boolean> {
  const exited = await Promise.race([once(child, 'exit').then(() => true), sleep(ms).then(() => false)]);
  return !exited && child.exitCode === null && child.signalCode === null;
}

/** A stand-in agent: a node process whose command line reads `… agent --config <configArg>`. */
function startFakeAgent(t: { after(fn: () => unknown): void }, configArg: string[], cwd: string): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)', 'agent', ...configArg], { cwd, stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  return child;
}

test('reregister leaves alone an unrelated process that now has the pid status.json names, and says why (exit 1, one line)', async (t) => {
  const bystander = startSleep(t);
  const { config, statusFile } = await configWithStalePid(t, bystander.pid!);

  const result = await runCli(['reregister', '--config', config]);
  assert.equal(await survives(bystander), true, 'the unrelated process was signalled');
  assert.equal(result.code, 1);
  assert.equal(result.stdout, '');
  assert.equal(result.stderr,
    `homeport reregister: the agent of ${config} is not running: pid ${bystander.pid} (from ${statusFile}) now belongs to another program (sleep); start the agent first\n`);
});

for (const source of ['/proc', 'ps'] as const) {
  test(`identifyAgentProcess through ${source}: a live agent of this config, another program, a gone pid`, async (t) => {
    const procRoot = source === '/proc' ? '/proc' : '/nonexistent-proc';
    const { dir, config } = await configWithStalePid(t, 0);
    const bystander = startSleep(t);
    const agent = startFakeAgent(t, ['--config', config], tmpdir());
    const otherConfig = startFakeAgent(t, ['--config', join(dir, 'other.toml')], tmpdir());
    await Promise.all([bystander, agent, otherConfig].map((child) => once(child, 'spawn')));

    assert.deepEqual(await identifyAgentProcess(agent.pid, config, procRoot), { kind: 'agent', pid: agent.pid });
    assert.deepEqual(await identifyAgentProcess(bystander.pid, config, procRoot), { kind: 'other', pid: bystander.pid, program: 'sleep' });
    assert.deepEqual(await identifyAgentProcess(otherConfig.pid, config, procRoot), { kind: 'other', pid: otherConfig.pid, program: 'node' });
    for (const pid of [undefined, '1', 0, -1, 1.5, 2 ** 31]) assert.deepEqual(await identifyAgentProcess(pid, config, procRoot), { kind: 'gone' }, `pid ${String(pid)}`);
    bystander.kill('SIGKILL');
    await once(bystander, 'exit');
    assert.deepEqual(await identifyAgentProcess(bystander.pid, config, procRoot), { kind: 'gone' });
    assert.equal(await survives(agent, 0), true);
  });
}

test('an agent started with a relative --config, or through a symlink, is recognised through /proc (which gives its working directory); through ps it is left alone', async (t) => {
  const { dir, config } = await configWithStalePid(t, 0);
  const link = join(dir, 'linked.toml');
  await symlink(config, link);
  const relative = startFakeAgent(t, ['-c', 'agent.toml'], dir);
  const linked = startFakeAgent(t, [`--config=${link}`], tmpdir());
  await Promise.all([relative, linked].map((child) => once(child, 'spawn')));
  assert.deepEqual(await identifyAgentProcess(relative.pid, config, '/proc'), { kind: 'agent', pid: relative.pid });
  assert.deepEqual(await identifyAgentProcess(linked.pid, config, '/proc'), { kind: 'agent', pid: linked.pid });

  // ps (macOS) shows no working directory: a relative --config cannot be matched, and the answer says so
  const throughPs = await identifyAgentProcess(relative.pid, config, '/nonexistent-proc');
  assert.equal(throughPs.kind, 'unknown');
  assert.match(throughPs.kind === 'unknown' ? throughPs.reason : '', /relative path.*start the agent with an absolute --config path$/);
});

test('agentConfigArgument reads the --config value of an `agent` command line in every spelling parseArgs accepts', () => {
  const node = ['/usr/bin/node', '/opt/homeport/dist/src/cli/main.js'];
  const cases: [string[], string | undefined][] = [
    [[...node, 'agent', '--config', '/etc/homeport/agent.toml'], '/etc/homeport/agent.toml'],
    [[...node, 'agent', '--log-file', '/var/log/a.log', '-c', 'agent.toml'], 'agent.toml'],
    [[...node, 'agent', '--config=/etc/a b/agent.toml'], '/etc/a b/agent.toml'],
    [[...node, 'agent', '-c/etc/agent.toml'], '/etc/agent.toml'],
    [['/usr/bin/node', '/usr/bin/homeport', 'agent', '--pid-file', '/run/a.pid', '--config', 'x.toml'], 'x.toml'],
    [[...node, 'rendezvous', '--config', '/etc/homeport/agent.toml'], undefined],
    [[...node, 'reregister', '--config', '/etc/homeport/agent.toml'], undefined],
    [[...node, 'agent'], undefined],
    [[...node, 'agent', '--config'], undefined],
    [['sleep', '300'], undefined],
    [[], undefined],
  ];
  for (const [argv, expected] of cases) assert.equal(agentConfigArgument(argv), expected, argv.join(' '));
});

test('commandTextNamesConfig (the ps fallback) needs the word agent and the config path as a whole argument', () => {
  const config = '/etc/home port/agent.toml';
  const cases: [string, boolean][] = [
    [`/usr/local/bin/node /opt/homeport/main.js agent --config ${config}`, true],
    [`/usr/local/bin/node /opt/homeport/main.js agent --config=${config} --pid-file /var/run/a.pid`, true],
    [`/usr/local/bin/node /opt/homeport/main.js agent -c ${config}`, true],
    [`/usr/local/bin/node /opt/homeport/main.js agent --config ${config}.bak`, false],
    [`/usr/local/bin/node /opt/homeport/main.js rendezvous --config ${config}`, false],
    [`/usr/local/bin/node /opt/homeport/main.js agent --config agent.toml`, false],
    ['sleep 300', false],
    ['', false],
  ];
  for (const [text, expected] of cases) assert.equal(commandTextNamesConfig(text, [config]), expected, text);
});
