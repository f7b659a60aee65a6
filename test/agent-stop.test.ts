import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { Agent } from 'node:https';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fetchTls, startAgentFixture } from './helpers/agent-fixture.js';

test('stopping the agent ends idle keep-alive connections instead of waiting for them (a service stop is prompt)', async () => {
  const upstream = createServer((_req, res) => res.end('ok')).listen(0, '127.0.0.1');
  await new Promise((resolve) => upstream.once('listening', resolve));
  const fixture = await startAgentFixture({ target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` });
  const keepAlive = new Agent({ keepAlive: true });
  try {
    const answer = await fetchTls(fixture, '/', { agent: keepAlive });
    assert.equal(answer.status, 200);
    const [idle] = Object.values(keepAlive.freeSockets).flat();
    assert.ok(idle, 'the client keeps its connection open for the next request');
    const clientClosed = new Promise((resolve) => idle.once('close', resolve));

    const started = Date.now();
    const stopped = await Promise.race([fixture.close().then(() => true), new Promise((resolve) => setTimeout(resolve, 5_000, false))]);
    assert.equal(stopped, true, 'close() waited on the idle connection (keep-alive lasts 65 s)');
    await clientClosed;
    assert.ok(Date.now() - started < 5_000);
  } finally {
    keepAlive.destroy();
    upstream.close();
  }
});
