import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { get } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli, startCli, stopChild } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const scratch: string[] = [];
after(() => Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true }))));

async function configFile(text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-rv-cli-'));
  scratch.push(dir);
  const file = join(dir, 'rendezvous.toml');
  await writeFile(file, text);
  return file;
}

function fetchHealth(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/healthz', rejectUnauthorized: false }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => { body += chunk; });
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    }).on('error', reject);
  });
}

test('homeport rendezvous logs one JSON "listening" line with its ports, serves, reloads on SIGHUP, stops on SIGTERM', { timeout: 30_000 }, async () => {
  const file = await configFile(`
[rendezvous]
control = "127.0.0.1:0"
http = "127.0.0.1:0"
[stun]
listen = "127.0.0.1:0"
[[agent]]
name = "home"
secret = "home-secret-0123456789"
`);
  const { child, match, output } = await startCli(['rendezvous', '--config', file], /^\{.*"msg":"rendezvous listening".*\}$/m);
  try {
    const listening = JSON.parse(match[0]) as Record<string, unknown>;
    assert.equal(listening.control, `127.0.0.1:${listening.controlPort}`);
    assert.equal(listening.http, `127.0.0.1:${listening.httpPort}`);
    assert.equal(listening.stun, `127.0.0.1:${listening.stunPort}`);
    assert.equal(await fetchHealth(listening.httpPort as number), '200 ok\n');
    child.kill('SIGHUP');
    await waitFor('the reload line', () => /SIGHUP: reloading/.test(output()));
    assert.equal(child.exitCode, null, 'SIGHUP reloads, it does not stop');
  } finally {
    assert.equal(await stopChild(child), 0, output());
  }
  assert.doesNotMatch(output(), /home-secret-0123456789/, 'the secret is never logged');
});

test('a bad config exits with code 2 and one line per problem, without starting', async () => {
  const file = await configFile('[rendezvous]\ncontrol = "7000"\n[[agent]]\nname = "home"\nsecret = "too-short"\n');
  const run = await runCli(['rendezvous', '--config', file]);
  assert.equal(run.code, 2);
  assert.deepEqual(run.stderr.trim().split('\n'), [
    `${file}: rendezvous.control "7000" is not host:port; write "0.0.0.0:25305", "127.0.0.1:25305" or "[::]:25305"`,
    `${file}: agent[0].secret is too short (9 characters); use at least 16, e.g. from "openssl rand -base64 24"`,
  ]);
  assert.equal(run.stdout, '');
});
