import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { daemonCommand, type Daemon } from '../../src/cli/daemon.js';
import { CLI, runCli, startCli, stopChild } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const AGENT_TOML = `
[agent]
name = "files-home"
listen = "127.0.0.1:0"
[[route]]
target = "http://127.0.0.1:9"
`;

/** The file's text once `done` says it holds what the test waits for (the logger writes asynchronously). */
async function fileOnce(file: string, done: (text: string) => boolean): Promise<string> {
  let text = '';
  for (const started = Date.now(); Date.now() - started < 5000; await new Promise((resolve) => setTimeout(resolve, 25))) {
    text = await readFile(file, 'utf8').catch(() => '');
    if (done(text)) return text;
  }
  throw new Error(`${file} never held what was expected; it holds:\n${text}`);
}

const lines = (text: string): Array<{ msg: string; logFile?: string }> => text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { msg: string });
const messages = (text: string): string[] => lines(text).map((line) => line.msg);

test('--help of both programs explains --log-file, --pid-file and SIGHUP', async () => {
  for (const program of ['agent', 'rendezvous']) {
    const result = await runCli([program, '--help']);
    assert.equal(result.code, 0);
    assert.match(result.stdout, new RegExp(`^Usage: homeport ${program} --config <${program}\\.toml> \\[--log-file <file>\\] \\[--pid-file <file>\\]`));
    assert.match(result.stdout, /--log-file <file> +write the log \(JSON lines\) to this file/);
    assert.match(result.stdout, /--pid-file <file> +write the process id/);
    assert.match(result.stdout, /SIGHUP reopens the --log-file at its path/);
  }
});

test('--log-file: the log goes to the file; after a rotation SIGHUP opens a fresh one; --pid-file lives as long as the process', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hp-daemon-files-'));
  await writeFile(join(dir, 'agent.toml'), AGENT_TOML);
  const logFile = join(dir, 'logs', 'homeport', 'agent.log'); // its folder does not exist yet
  const pidFile = join(dir, 'run', 'agent.pid');
  const agent = await startCli(['agent', '--config', join(dir, 'agent.toml'), '--log-file', logFile, '--pid-file', pidFile], /logging to .* \(pid \d+\)\n/);
  t.after(() => stopChild(agent.child));

  const before = await fileOnce(logFile, (text) => text.includes('"agent listening"'));
  assert.equal((await stat(logFile)).mode & 0o777, 0o640 & ~process.umask());
  assert.equal(await readFile(pidFile, 'utf8'), `${agent.child.pid}\n`);
  assert.equal(agent.output(), `homeport agent: logging to ${logFile} (pid ${agent.child.pid})\n`, 'no log lines on stdout');

  await rename(logFile, `${logFile}.0`); // what newsyslog and logrotate do, before sending SIGHUP
  agent.child.kill('SIGHUP');
  const fresh = await fileOnce(logFile, (text) => text.includes('SIGHUP'));
  assert.deepEqual(lines(fresh).map((line) => ({ msg: line.msg, logFile: line.logFile })), [{ msg: 'SIGHUP: reloading', logFile }]);

  assert.equal(await stopChild(agent.child), 0);
  const after = await fileOnce(logFile, (text) => text.includes('"stopping"'));
  assert.deepEqual(messages(after), ['SIGHUP: reloading', 'stopping']);
  assert.equal(await readFile(`${logFile}.0`, 'utf8'), before, 'the rotated file keeps the old lines and gets no new ones');
  assert.ok(messages(before).includes('agent listening'));
  await assert.rejects(stat(pidFile), { code: 'ENOENT' }, 'the pid file is removed on a clean stop');
});

test('a --log-file or --pid-file that cannot be written, or a bad config, stops the start with one line and exit code 2', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hp-daemon-files-'));
  const config = join(dir, 'agent.toml');
  await writeFile(config, AGENT_TOML);
  const underAFile = join(config, 'agent.log'); // a folder that is a file: refused even for root

  const log = await runCli(['agent', '--config', config, '--log-file', underAFile]);
  assert.equal(log.code, 2);
  assert.equal(log.stderr, `--log-file ${underAFile}: cannot be written (EEXIST: file already exists, mkdir '${config}'); pick a folder the service's user may write to\n`);

  const pid = await runCli(['agent', '--config', config, '--pid-file', underAFile]);
  assert.equal(pid.code, 2);
  assert.equal(pid.stderr, `--pid-file ${underAFile}: cannot be written (EEXIST: file already exists, mkdir '${config}'); pick a folder the service's user may write to\n`);

  await writeFile(join(dir, 'bad.toml'), '[agent]\nlisten = "nowhere"\n');
  const pidFile = join(dir, 'agent.pid');
  const bad = await runCli(['agent', '--config', join(dir, 'bad.toml'), '--pid-file', pidFile]);
  assert.equal(bad.code, 2);
  await assert.rejects(stat(pidFile), { code: 'ENOENT' }, 'no pid file for a config that is not valid');
});

/** The HTTP status the agent answers on https://127.0.0.1:port/ (its certificate is self-signed). */
function statusCodeOf(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/', rejectUnauthorized: false, agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode);
    }).on('error', reject);
  });
}

test('SIGHUP and SIGUSR2 as soon as the pid file names the starting agent do not kill it: it starts, serves, then reopens its log once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hp-daemon-files-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'agent.toml'), `${AGENT_TOML}[whitelist]\nallow = ["127.0.0.1/32"]\n`);
  const logFile = join(dir, 'agent.log');
  const pidFile = join(dir, 'run', 'agent.pid');
  await mkdir(join(dir, 'run'));
  const child = spawn(process.execPath, [CLI, 'agent', '--config', join(dir, 'agent.toml'), '--log-file', logFile, '--pid-file', pidFile], { stdio: 'ignore' });
  t.after(() => stopChild(child));

  // what newsyslog does: read the pid file and signal that pid, here at the earliest possible moment
  while ((await readFile(pidFile, 'utf8').catch(() => '')) === '') {
    assert.equal(child.exitCode, null, 'exited before writing its pid file');
    await sleep(1);
  }
  child.kill('SIGHUP');
  child.kill('SIGUSR2');
  assert.doesNotMatch(await readFile(logFile, 'utf8'), /agent listening/, 'the signals must arrive while the agent is still starting');

  const log = await Promise.race([
    fileOnce(logFile, (text) => text.includes('"agent listening"') && text.includes('SIGHUP')),
    once(child, 'exit').then(([code, signal]) => { throw new Error(`the agent died while starting: exit ${code}, signal ${signal}`); }),
  ]);
  const listening = lines(log).find((line) => line.msg === 'agent listening') as { listen?: string } | undefined;
  const port = Number(/:(\d+)$/.exec(listening?.listen ?? '')?.[1]);
  assert.equal(await statusCodeOf(port), 502, 'it serves (the route\'s target is closed)');
  const held = messages(log).filter((msg) => /agent listening|SIGHUP/.test(msg));
  assert.deepEqual(held, ['agent listening', 'SIGHUP: reloading'], 'the early SIGHUP is handled once, after the start');
  assert.equal(await stopChild(child), 0);
});

/** A daemon whose start and close wait until the test lets them finish. */
function gatedSpec(events: string[]) {
  let finishStart!: () => void;
  let finishClose!: () => void;
  const started = new Promise<void>((resolve) => { finishStart = resolve; });
  const closed = new Promise<void>((resolve) => { finishClose = resolve; });
  const onReregister = (): void => { events.push('reregister'); };
  const command = daemonCommand({
    name: 'gated',
    summary: '',
    description: '',
    configHelp: '',
    reloads: '',
    load: async () => ({ log: { level: 'silent' } }),
    async start(): Promise<Daemon & { certificates: { describe(): string[] } }> {
      events.push('starting');
      await started;
      process.on('SIGUSR2', onReregister); // as the agent's start does
      return {
        reload: async () => { events.push('reload'); },
        close: async () => { events.push('closing'); await closed; process.off('SIGUSR2', onReregister); },
        certificates: { describe: () => [] },
      };
    },
  });
  return { command, finishStart, finishClose };
}

const settle = (): Promise<void> => sleep(50);

test('a daemon holds SIGHUP and SIGUSR2 while it starts (each delivered once it runs) and ignores SIGHUP while it stops', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hp-daemon-files-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'gated.pid');
  const handlers = (): number => ['SIGHUP', 'SIGUSR2', 'SIGINT', 'SIGTERM'].reduce((sum, signal) => sum + process.listenerCount(signal), 0);
  const handlersBefore = handlers();
  const events: string[] = [];
  const { command, finishStart, finishClose } = gatedSpec(events);
  const running = command.run(['--config', join(dir, 'gated.toml'), '--pid-file', pidFile]);
  await waitFor('the daemon to start', () => events.includes('starting'));
  assert.equal(await readFile(pidFile, 'utf8'), `${process.pid}\n`);

  // without handlers in place, either signal would end this test process
  for (const signal of ['SIGHUP', 'SIGUSR2', 'SIGHUP'] as const) process.kill(process.pid, signal);
  await settle();
  assert.deepEqual(events, ['starting'], 'nothing happens before the daemon runs');
  finishStart();
  await waitFor('the held signals', () => events.length >= 3);
  await settle();
  assert.deepEqual(events, ['starting', 'reload', 'reregister'], 'each held signal delivered once');

  process.kill(process.pid, 'SIGTERM');
  await waitFor('the daemon to close', () => events.includes('closing'));
  process.kill(process.pid, 'SIGHUP');
  await settle();
  assert.deepEqual(events.slice(3), ['closing'], 'no reload while closing');
  finishClose();
  assert.equal(await running, 0);
  await assert.rejects(stat(pidFile), { code: 'ENOENT' });
  assert.equal(handlers(), handlersBefore, 'no handler left behind');
});
