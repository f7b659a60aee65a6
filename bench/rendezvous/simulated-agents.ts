/**
 * A load-generator process for the rendezvous benchmark: many simulated agents in one Node process, each
 * doing what a real agent does on the wire, at a fraction of the cost. Started by load.ts with an IPC
 * channel; exits when its parent goes away.
 *
 * Each agent, like src/agent/punch.ts, connects to the rendezvous from its own "punched" address (a
 * 127.x address and a fixed port P), then listens on that same address and port, so the rendezvous's
 * reachability check, which connects back to the address it observed, lands on the agent. The listeners
 * hand every probe connection to one shared TLS server presenting the certificate whose fingerprint the
 * agents register. Each agent does the real handshake of src/protocol (hello, challenge, auth with the
 * HMAC, welcome checked), then sends a sealed ping every heartbeat and checks every sealed pong and probe
 * result, in order, as a real agent must.
 */
import { connect, createServer, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { FramedConnection } from '../../src/protocol/channel.js';
import { PROTOCOL_VERSION, type Message } from '../../src/protocol/messages.js';
import { authMac, macEquals, SealedChannelState, sessionKey, welcomeMac } from '../../src/protocol/session.js';
import { randomNonce } from '../../src/common/nonce.js';
import type { AgentCounters, WorkerCommand, WorkerReport } from './worker-protocol.js';

const counters: AgentCounters = {
  registered: 0, failed: 0, disconnected: 0, pings: 0, pongs: 0, probesReachable: 0, probesUnreachable: 0,
  probeConnections: 0, probeHandshakes: 0, registeredAtMs: [],
};
const failures: string[] = [];

function report(message: WorkerReport): void {
  process.send?.(message);
}

function noteFailure(why: string): void {
  if (failures.length < 20) failures.push(why);
}

interface AgentSpec {
  name: string;
  secret: string;
  /** The punched address: the control connection leaves from it and the listener takes it after. */
  ip: string;
  port: number;
}

interface StartSettings {
  server: { host: string; port: number };
  fingerprint: string;
  /** The agent's own heartbeat; the one the rendezvous announces wins when shorter, as in control-client.ts. */
  heartbeatMs: number;
}

class SimulatedAgent {
  private connection: FramedConnection | undefined;
  private readonly clientNonce = randomNonce();
  private serverNonce = '';
  private sealed: SealedChannelState | undefined;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(private readonly spec: AgentSpec, private readonly settings: StartSettings, private readonly onProbe: (socket: Socket) => void) {}

  /** Resolves once registered or failed; the ramp waits on it to bound the handshakes in flight. */
  start(): Promise<void> {
    return new Promise((resolve) => {
      const { ip, port } = this.spec;
      const socket = connect({ host: this.settings.server.host, port: this.settings.server.port, localAddress: ip, localPort: port, noDelay: true });
      socket.once('error', (error) => {
        this.fail(`connect from ${ip}:${port}: ${error.message}`);
        resolve();
      });
      socket.once('connect', () => {
        // connect first, then listen on the same address and port (SO_REUSEADDR), as the real agent does
        const listener = createServer({ noDelay: true }, this.onProbe);
        listener.once('error', (error) => noteFailure(`listen on ${ip}:${port}: ${error.message}`));
        listener.listen({ host: ip, port, backlog: 16 });
        this.talk(socket, resolve);
      });
    });
  }

  private talk(socket: Socket, registeredOrFailed: () => void): void {
    const connection = new FramedConnection(socket);
    this.connection = connection;
    let settled = false;
    const settle = (): void => {
      if (!settled) registeredOrFailed();
      settled = true;
    };
    connection.on('message', (message) => {
      if (!this.receive(message)) {
        connection.reset();
        settle();
      } else if (this.sealed) {
        settle();
      }
    });
    connection.on('close', (cause) => {
      clearInterval(this.heartbeat);
      if (this.sealed) {
        counters.disconnected += 1;
        noteFailure(`${this.spec.name} lost its session: ${cause ?? 'closed by the rendezvous'}`);
      } else {
        this.fail(`${this.spec.name} handshake ended: ${cause ?? 'closed by the rendezvous'}`);
      }
      settle();
    });
    connection.send({ type: 'hello', version: PROTOCOL_VERSION, agent: this.spec.name, nonce: this.clientNonce });
  }

  /** False when the rendezvous sent something a real agent would reset the connection for. */
  private receive(message: Message): boolean {
    if (this.sealed) {
      const opened = this.sealed.open(message);
      if (!opened.ok) return this.reject(opened.error);
      if (opened.value.type === 'pong') counters.pongs += 1;
      else if (opened.value.type === 'probe') counters[opened.value.reachable ? 'probesReachable' : 'probesUnreachable'] += 1;
      return true;
    }
    const { name, secret } = this.spec;
    if (message.type === 'challenge' && !this.serverNonce) {
      this.serverNonce = message.nonce;
      const claims = { fingerprint: this.settings.fingerprint, listenPort: this.spec.port };
      return this.connection!.send({ type: 'auth', mac: authMac(secret, name, this.clientNonce, this.serverNonce, claims), ...claims }).ok;
    }
    if (message.type !== 'welcome' || !this.serverNonce) return this.reject(`unexpected ${message.type} during the handshake`);
    const expected = welcomeMac(secret, name, this.serverNonce, this.clientNonce, message);
    if (!macEquals(expected, message.mac)) return this.reject('welcome MAC does not verify');
    if (message.observed.port !== this.spec.port) return this.reject(`observed port ${message.observed.port}, expected ${this.spec.port}`);
    this.sealed = new SealedChannelState(sessionKey(secret, this.clientNonce, this.serverNonce), 'agent');
    const interval = Math.min(this.settings.heartbeatMs, message.heartbeatMs);
    this.heartbeat = setInterval(() => this.ping(), interval);
    counters.registered += 1;
    counters.registeredAtMs.push(Date.now());
    return true;
  }

  private ping(): void {
    if (this.connection?.send(this.sealed!.seal({ type: 'ping' })).ok) counters.pings += 1;
  }

  private reject(why: string): false {
    noteFailure(`${this.spec.name}: ${why}`);
    return false;
  }

  private fail(why: string): void {
    counters.failed += 1;
    noteFailure(why);
  }
}

/** Registers the agents with at most `concurrency` handshakes in flight, like a crowd arriving. */
async function ramp(specs: AgentSpec[], settings: StartSettings, concurrency: number, onProbe: (socket: Socket) => void): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < specs.length) {
      await new SimulatedAgent(specs[next++]!, settings, onProbe).start();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

/** One TLS server for every agent's listener: it answers the reachability checks with the agents' certificate. */
function probeAnswerer(key: string, cert: string): (socket: Socket) => void {
  const tls = createTlsServer({ key, cert, ALPNProtocols: ['http/1.1'], handshakeTimeout: 10_000 }, (secured) => {
    counters.probeHandshakes += 1;
    secured.on('error', () => undefined);
    secured.on('end', () => secured.end());
  });
  tls.on('tlsClientError', () => undefined);
  return (socket) => {
    counters.probeConnections += 1;
    socket.on('error', () => undefined);
    tls.emit('connection', socket);
  };
}

function snapshot(): WorkerReport {
  const { registeredAtMs, ...rest } = counters;
  const report: WorkerReport = { type: 'counters', counters: { ...rest, registeredAtMs: [...registeredAtMs] }, failures: [...failures] };
  registeredAtMs.length = 0; // each timestamp is sent once; the parent keeps them
  return report;
}

process.on('disconnect', () => process.exit(0));
process.on('message', (command: WorkerCommand) => {
  if (command.type === 'start') {
    const settings: StartSettings = { server: command.server, fingerprint: command.fingerprint, heartbeatMs: command.heartbeatMs };
    const onProbe = probeAnswerer(command.key, command.cert);
    void ramp(command.agents, settings, command.concurrency, onProbe).then(() => report({ type: 'ramped' }));
  } else if (command.type === 'counters') {
    report(snapshot());
  }
});
report({ type: 'ready' });
