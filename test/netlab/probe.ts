// A tiny network probe that a test runs inside a lab namespace (Lab.spawn) and drives over the Node IPC
// channel: UDP and TCP reflectors that tell a client the address they observed, punched-port listeners,
// clients. Requests and answers: probe-protocol.ts. It exits when the test process goes away.
import dgram from 'node:dgram';
import net from 'node:net';
import { Mailbox } from './mailbox.js';
import {
  PROBE_READY,
  formatEndpoint,
  type Datagram,
  type Endpoint,
  type LocalUdp,
  type ProbeOps,
  type ProbeRequest,
  type ProbeResponse,
  type TcpOutcome,
} from './probe-protocol.js';

interface BoundUdp {
  socket: dgram.Socket;
  inbox: Mailbox<Datagram>;
}

interface OpenConnection {
  socket: net.Socket;
  /** "closed" or an error code, as they happen */
  events: Mailbox<string>;
}

const udpSockets = new Map<string, BoundUdp>();
const connections = new Map<number, OpenConnection>();
let lastConnection = 0;

type Handlers = { [K in keyof ProbeOps]: (args: ProbeOps[K]['args']) => Promise<ProbeOps[K]['result']> };

const handlers: Handlers = {
  'udp-bind': bindUdp,
  'udp-ask': async ({ local, to, payload, timeoutMs }) => {
    const { socket, inbox } = boundUdp(local);
    await sendDatagram(socket, payload, to);
    const fromTarget = (datagram: Datagram): boolean =>
      datagram.from.host === to.host && datagram.from.port === to.port;
    return (await inbox.take(fromTarget, timeoutMs)) ?? null;
  },
  'udp-send': async ({ local, to, payload }) => {
    await sendDatagram(boundUdp(local).socket, payload, to);
    return null;
  },
  'udp-receive': async ({ local, timeoutMs }) => (await boundUdp(local).inbox.take(() => true, timeoutMs)) ?? null,
  'tcp-reflect': async ({ local }) => {
    const server = net.createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.write(`${socket.remoteAddress}:${socket.remotePort}\n`);
    });
    return listen(server, local.port, local.host);
  },
  'tcp-listen': async ({ port, greeting }) => {
    const server = net.createServer((socket) => {
      socket.on('error', () => socket.destroy());
      socket.end(`${greeting}\n`);
    });
    return listen(server, port); // on every address, as homeport's agent listens
  },
  'tcp-request': requestTcp,
  'tcp-write': async ({ connection, timeoutMs }) => {
    const open = connections.get(connection);
    if (!open) throw new Error(`no connection number ${connection}`);
    open.socket.write('ping\n');
    return (await open.events.take(() => true, timeoutMs)) ?? 'open';
  },
};

async function bindUdp({ local, reflect }: ProbeOps['udp-bind']['args']): Promise<null> {
  const key = udpKey(local);
  if (udpSockets.has(key)) throw new Error(`UDP ${key} is bound already`);
  const socket = dgram.createSocket('udp4');
  const inbox = new Mailbox<Datagram>();
  socket.on('message', (data, sender) => {
    const from = { host: sender.address, port: sender.port };
    if (reflect) socket.send(formatEndpoint(from), sender.port, sender.address);
    else inbox.put({ from, payload: data.toString() });
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(local.port, local.host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  socket.on('error', (error) => console.error(`UDP ${key}: ${error.message}`)); // a probe never dies of it
  udpSockets.set(key, { socket, inbox });
  return null;
}

function boundUdp(local: LocalUdp): BoundUdp {
  const bound = udpSockets.get(udpKey(local));
  if (!bound) throw new Error(`UDP ${udpKey(local)} is not bound (udp-bind first)`);
  return bound;
}

function udpKey(local: LocalUdp): string {
  return formatEndpoint({ host: local.host ?? '0.0.0.0', port: local.port });
}

function sendDatagram(socket: dgram.Socket, payload: string, to: Endpoint): Promise<void> {
  return new Promise((resolve, reject) =>
    socket.send(payload, to.port, to.host, (error) => (error ? reject(error) : resolve())),
  );
}

function listen(server: net.Server, port: number, host?: string): Promise<null> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => {
      server.off('error', reject);
      resolve(null);
    });
  });
}

function requestTcp({ to, localPort, timeoutMs }: ProbeOps['tcp-request']['args']): Promise<TcpOutcome> {
  const socket = net.connect({ host: to.host, port: to.port, localPort });
  return new Promise((resolve) => {
    let received = '';
    const settle = (outcome: TcpOutcome): void => {
      clearTimeout(timer);
      socket.off('data', onData).off('error', onError).off('close', onClose);
      resolve(outcome);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.toString();
      const end = received.indexOf('\n');
      if (end >= 0) settle({ reply: received.slice(0, end), connection: keepOpen(socket) });
    };
    const onError = (error: NodeJS.ErrnoException): void => settle({ failure: error.code ?? error.message });
    const onClose = (): void => settle({ failure: 'closed' });
    const timer = setTimeout(() => {
      socket.destroy();
      settle({ failure: 'timeout' });
    }, timeoutMs);
    socket.on('data', onData).on('error', onError).on('close', onClose);
  });
}

/** Track a connection from here on, so tcp-write can tell what happens to it. */
function keepOpen(socket: net.Socket): number {
  const number = ++lastConnection;
  const events = new Mailbox<string>();
  socket.on('error', (error: NodeJS.ErrnoException) => events.put(error.code ?? error.message));
  socket.on('close', () => events.put('closed'));
  socket.resume(); // keep reading, so a RST is noticed
  connections.set(number, { socket, events });
  return number;
}

async function handle(request: ProbeRequest): Promise<void> {
  let response: ProbeResponse;
  try {
    const handler = handlers[request.op] as (args: unknown) => Promise<unknown>;
    response = { id: request.id, result: await handler(request.args) };
  } catch (error) {
    response = { id: request.id, error: error instanceof Error ? error.message : String(error) };
  }
  process.send?.(response);
}

function serve(): void {
  process.on('message', (request) => void handle(request as ProbeRequest));
  process.on('disconnect', () => process.exit(0)); // the test is gone, and so are we
  process.send?.(PROBE_READY);
}

// `node --test dist/test/` runs every .js under test/, this one too: without an IPC channel it does nothing
if (process.send) serve();
