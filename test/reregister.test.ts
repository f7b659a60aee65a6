import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli, stopChild } from './helpers/cli.js';
import { startLoopbackPair } from './helpers/loopback-pair.js';

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
  const pair = await startLoopbackPair({ prefix: 'hp-rereg-' });
  t.after(() => pair.stop());
  const { agent } = pair;
  const statusFile = join(pair.agentState, 'status.json');
  const first = await registeredStatus(statusFile);

  const result = await runCli(['reregister', '--config', pair.agentConfig]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^re-registered: public address 127\.0\.0\.1:\d+$/m);
  const after = await registeredStatus(statusFile);
  assert.ok(Date.parse(after.registeredAt!) > Date.parse(first.registeredAt!), `${first.registeredAt} then ${after.registeredAt}`);
  assert.equal(after.localPort, first.localPort, 'the same punched port P');
  assert.match(agent.output(), /re-registering with the rendezvous/);
  assert.equal(result.stdout.includes(`:${after.localPort}`), true, 'on loopback the observed port is P itself');

  await stopChild(agent.child);
  const stopped = await runCli(['reregister', '--config', pair.agentConfig]);
  assert.equal(stopped.code, 1);
  assert.match(stopped.stderr, /no running agent found/);
});
