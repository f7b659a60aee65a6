import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect } from 'node:tls';
import { readStatusFile, type AgentStatus } from '../src/agent/status.js';
import { CLI, stopChild } from './helpers/cli.js';
import { startLoopbackPair, writeLoopbackConfigs } from './helpers/loopback-pair.js';
import { freePort } from './helpers/ports.js';
import { missingTool } from './helpers/tools.js';

/** The programs as services: readiness under systemd, and the re-register job running by itself. */

/**
 * systemd's side of NOTIFY_SOCKET: a unix datagram socket (Node cannot bind one, python3 can). It closes
 * every fd passed with a datagram, as PID 1 does, which releases systemd-notify's BARRIER=1 wait, and
 * prints one JSON line per datagram.
 */
const RECEIVER = `
import array, json, os, socket, sys
receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
receiver.bind(sys.argv[1])
print(json.dumps({"bound": True}), flush=True)
while True:
    data, ancillary, _flags, _address = receiver.recvmsg(4096, socket.CMSG_SPACE(64))
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    for fd in fds:
        os.close(fd)
    print(json.dumps({"data": data.decode(), "fds": len(fds)}), flush=True)
`;

interface Datagram { data: string; fds: number }

async function startNotifyReceiver(t: TestContext, dir: string): Promise<{ socket: string; datagrams: Datagram[]; nextReady: Promise<void> }> {
  const socket = join(dir, 'notify.sock');
  const receiver = spawn('python3', ['-c', RECEIVER, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.after(() => stopChild(receiver));
  const datagrams: Datagram[] = [];
  let readyArrived!: () => void;
  const nextReady = new Promise<void>((resolve) => { readyArrived = resolve; });
  const lines = createInterface({ input: receiver.stdout });
  await new Promise<void>((resolve, reject) => {
    receiver.once('exit', (code) => reject(new Error(`the notify receiver exited with ${code}`)));
    lines.on('line', (line) => {
      const message = JSON.parse(line) as Datagram | { bound: true };
      if ('bound' in message) return resolve();
      datagrams.push(message);
      if (message.data === 'READY=1') readyArrived();
    });
  });
  return { socket, datagrams, nextReady };
}

/**
 * Starts `homeport <args>` with NOTIFY_SOCKET set, as systemd starts a Type=notify unit. It does not wait
 * for any log line: the test must learn that the program is ready from READY=1 alone.
 */
function startUnderSystemd(args: string[], socket: string): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, NOTIFY_SOCKET: socket }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => { output += chunk; });
  child.stderr.on('data', (chunk: Buffer) => { output += chunk; });
  return { child, output: () => output };
}

/** Resolves once a TLS handshake with the port completes: the program is serving. */
function tlsHandshake(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', rejectUnauthorized: false }, () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

/**
 * What a Type=notify unit needs: READY=1 exactly once, when the port already completes TLS handshakes,
 * then systemd-notify's barrier, released without a timeout.
 */
async function assertReadyOnce(t: TestContext, program: string, config: string, port: number): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-ready-'));
  const receiver = await startNotifyReceiver(t, dir);
  const child = startUnderSystemd([program, '--config', config], receiver.socket);
  t.after(() => stopChild(child.child));
  const exited = new Promise<never>((_, reject) => child.child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${child.output()}`))));
  await Promise.race([receiver.nextReady, exited]);
  // at once, no retry: a READY=1 sent before the port is bound fails here. (The order in which the test
  // reads the child's stdout and the receiver's is not the order they were written, so the log line
  // cannot prove it.)
  await tlsHandshake(port);
  await new Promise((resolve) => setTimeout(resolve, 700)); // room for a second READY=1 or a barrier timeout
  assert.deepEqual(receiver.datagrams, [{ data: 'READY=1', fds: 0 }, { data: 'BARRIER=1', fds: 1 }]);
  assert.doesNotMatch(child.output(), /systemd-notify/, 'systemd-notify reported no failure');
  assert.equal(await stopChild(child.child), 0);
}

test('the agent sends READY=1 through the real systemd-notify once it is serving', { skip: missingTool('systemd-notify') ?? missingTool('python3') }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'hp-ready-'));
  const port = await freePort();
  await writeFile(join(dir, 'agent.toml'), `
[agent]
name = "systemd-home"
listen = "127.0.0.1:${port}"
[whitelist]
allow = ["127.0.0.1/32"]
[[route]]
target = "http://127.0.0.1:9"
`);
  await assertReadyOnce(t, 'agent', join(dir, 'agent.toml'), port);
});

test('the rendezvous sends READY=1 through the real systemd-notify once both ports are serving', { skip: missingTool('systemd-notify') ?? missingTool('python3') }, async (t) => {
  const configs = await writeLoopbackConfigs({ prefix: 'hp-ready-' });
  await assertReadyOnce(t, 'rendezvous', configs.rendezvousConfig, configs.ports.http);
});

test('the re-register job fires by itself (fast test schedule, no delay) and registers again from the punched port', async (t) => {
  const pair = await startLoopbackPair({
    prefix: 'hp-daemon-rereg-',
    agent: { rendezvousLines: 'reregister = "*/2 * * * * *"\nreregisterDelay = "0s"\n' },
  });
  t.after(() => pair.stop());
  const { agent } = pair;

  // every registration the status file records, until the first one and two more by the job
  const registrations = new Map<string, AgentStatus>();
  for (const started = Date.now(); registrations.size < 3 && Date.now() - started < 12_000; await new Promise((resolve) => setTimeout(resolve, 100))) {
    const status = await readStatusFile(join(pair.agentState, 'status.json'));
    if (status?.registeredAt && status.publicAddress) registrations.set(status.registeredAt, status);
  }
  assert.ok(registrations.size >= 3, `registered ${registrations.size} times:\n${agent.output()}`);
  const [first] = registrations.values();
  for (const status of registrations.values()) {
    assert.equal(status.localPort, first!.localPort, 'always the same punched port P');
    assert.deepEqual(status.publicAddress, { ip: '127.0.0.1', port: first!.localPort }, 'on loopback the rendezvous sees P itself');
  }
  const byTheJob = agent.output().match(/"reason":"daily schedule","msg":"re-registering with the rendezvous"/g) ?? [];
  assert.ok(byTheJob.length >= 2, `the schedule asked ${byTheJob.length} times:\n${agent.output()}`);
  assert.doesNotMatch(agent.output(), /homeport reregister|network interfaces changed|heartbeat replies stale/, 'nothing but the job re-registered');
});
