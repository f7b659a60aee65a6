import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { startLoopbackPair } from '../helpers/loopback-pair.js';
import { waitFor } from '../helpers/wait.js';
import { bindingBytes } from '../helpers/stun-bytes.js';
import { tcpClient, tcpMessages, udpClient, udpExchange } from '../helpers/stun-client.js';

/** A JSON log line of a child's output whose msg is `msg`. */
function logLine(output: string, msg: string): Record<string, unknown> {
  const line = output.split('\n').find((text) => text.includes(`"msg":"${msg}"`));
  assert.ok(line, `a "${msg}" line in:\n${output}`);
  return JSON.parse(line) as Record<string, unknown>;
}

test('the rendezvous answers STUN where its [stun] says, and the agent learns that port in its verified welcome', { timeout: 30_000 }, async (t) => {
  const pair = await startLoopbackPair({ prefix: 'hp-rv-stun-' });
  t.after(() => pair.stop());
  const listening = logLine(pair.rendezvous.output(), 'rendezvous listening');
  const stunPort = listening.stunPort as number;
  assert.equal(listening.stun, `127.0.0.1:${stunPort}`);
  assert.equal(logLine(pair.agent.output(), 'registered with the rendezvous').stunPort, stunPort, 'the agent got the port from the welcome');

  const client = await udpClient();
  t.after(() => client.close());
  const answer = await udpExchange(client, { ip: '127.0.0.1', port: stunPort }, bindingBytes());
  assert.ok(answer, 'answered over UDP');
  assert.deepEqual(answer.message.attributes.xorMappedAddress, { ip: '127.0.0.1', port: client.address().port });
  assert.match(answer.message.attributes.software ?? '', /^homeport \d+\.\d+\.\d+/);

  const socket = await tcpClient({ ip: '127.0.0.1', port: stunPort });
  t.after(() => socket.destroy());
  const messages = tcpMessages(socket, 1);
  socket.write(bindingBytes());
  assert.deepEqual((await messages)[0]!.attributes.xorMappedAddress, { ip: '127.0.0.1', port: socket.localPort }, 'answered over TCP on the same port');
});

test('the agent checks its NAT against the rendezvous once after it starts, and status shows the verdict', { timeout: 30_000 }, async (t) => {
  const pair = await startLoopbackPair({ prefix: 'hp-rv-natcheck-' });
  t.after(() => pair.stop());
  // loopback has no NAT, and a rendezvous without [stun] alternate cannot test filtering: "cannot tell", not a guess
  const check = await waitFor('the agent\'s NAT check', () => pair.agent.output().includes('"msg":"NAT check:') && logLine(pair.agent.output(), logMessage(pair.agent.output())), 15_000);
  assert.equal(check.classic, 'cannot tell');
  assert.match(String(check.server), /^127\.0\.0\.1:\d+$/);
  const status = await runCli(['status', '--config', pair.agentConfig]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /^NAT +cannot tell \(no NAT\), checked \S+ against 127\.0\.0\.1:\d+$/m);
  assert.match(status.stdout, /^ +cannot tell what the NAT allows with this server/m, 'the advice continues under the verdict');
  const json = JSON.parse((await runCli(['status', '--config', pair.agentConfig, '--json'])).stdout) as { nat?: { classic: string; advice: string[] } };
  assert.equal(json.nat?.classic, 'cannot tell');
});

/** The msg of the agent's "NAT check: …" line. */
function logMessage(output: string): string {
  return /"msg":"(NAT check:[^"]*)"/.exec(output)![1]!;
}
