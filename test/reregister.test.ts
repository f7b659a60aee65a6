import { test } from 'node:test';
import { freePort } from './helpers/ports.js';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, startCli, stopChild } from './helpers/cli.js';

const SECRET = 'loopback-secret-0123456789';

interface Status { registeredAt?: string; localPort: number }

/** status.json once it records a registration (the agent writes it right after registering). */
async function registeredStatus(file: string): Promise<Status> {
  for (let i = 0; i < 100; i++) {
    const status = await readFile(file, 'utf8').then((text) => JSON.parse(text) as Status, () => undefined);
    if (status?.registeredAt) return status;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${file} never recorded a registration`);
}

test('homeport reregister makes the running agent register again from its punched port', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hp-rereg-'));
  const [control, http] = [await freePort(), await freePort()];
  await writeFile(join(dir, 'rendezvous.toml'), `
[rendezvous]
control = "127.0.0.1:${control}"
http = "127.0.0.1:${http}"
stateDir = "./rv"
heartbeat = "1s"
[[agent]]
name = "home"
secret = "${SECRET}"
`);
  await writeFile(join(dir, 'agent.toml'), `
[agent]
name = "home"
listen = "127.0.0.1:0"
stateDir = "./agent"
[whitelist]
allow = ["127.0.0.1/32"]
[[route]]
target = "http://127.0.0.1:9"
[rendezvous]
server = "127.0.0.1:${control}"
secret = "${SECRET}"
heartbeat = "1s"
`);
  const rendezvous = await startCli(['rendezvous', '--config', join(dir, 'rendezvous.toml')], /rendezvous listening/);
  t.after(() => stopChild(rendezvous.child));
  const agent = await startCli(['agent', '--config', join(dir, 'agent.toml')], /agent listening/);
  t.after(() => stopChild(agent.child));
  const first = await registeredStatus(join(dir, 'agent', 'status.json'));

  const result = await runCli(['reregister', '--config', join(dir, 'agent.toml')]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^re-registered: public address 127\.0\.0\.1:\d+$/m);
  const after = await registeredStatus(join(dir, 'agent', 'status.json'));
  assert.ok(Date.parse(after.registeredAt!) > Date.parse(first.registeredAt!), `${first.registeredAt} then ${after.registeredAt}`);
  assert.equal(after.localPort, first.localPort, 'the same punched port P');
  assert.match(agent.output(), /re-registering with the rendezvous/);
  assert.equal(result.stdout.includes(`:${after.localPort}`), true, 'on loopback the observed port is P itself');

  await stopChild(agent.child);
  const stopped = await runCli(['reregister', '--config', join(dir, 'agent.toml')]);
  assert.equal(stopped.code, 1);
  assert.match(stopped.stderr, /no running agent found/);
});
