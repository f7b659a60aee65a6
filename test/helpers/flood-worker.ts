import { connect as connectTcp, createServer, type AddressInfo, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/**
 * An attacker in a worker thread: its own event loop, so thousands of sockets on the attacking side do not
 * slow the test's own measuring client (the download, the normal request) in the main thread. Every source
 * is a loopback address the socket binds to (Linux routes all of 127/8 to lo).
 */
export type FloodJob =
  /**
   * `count` connections, `concurrency` at a time, round-robin over `sources`; each sends a TLS ClientHello
   * at once. `perSecond` paces them (default: as fast as they go).
   */
  | { kind: 'connect'; port: number; sources: string[]; count: number; concurrency: number; timeoutMs: number; perSecond?: number }
  /** `perSource` connections from each source, held open (after a TLS handshake when `tls`) until stop(). */
  | { kind: 'hold'; port: number; sources: string[]; perSource: number; tls: boolean; concurrency: number }
  /** TLS handshakes from `source`, `concurrency` at a time, each closed once done, for `durationMs`. */
  | { kind: 'handshakes'; port: number; source: string; concurrency: number; durationMs: number };

export interface ConnectReport {
  connects: number;
  /** The TCP handshake completed (the kernel accepted it for the agent). */
  established: number;
  /** Connections on which the agent sent any byte at all (a ServerHello would be one). */
  answered: number;
  /** Connections the agent closed with a reset... */
  resets: number;
  /** ...or with a FIN. */
  fins: number;
  /** Still open after timeoutMs: the agent neither answered nor closed. */
  hung: number;
  otherErrors: Record<string, number>;
  ms: number;
}

export interface HoldReport {
  attempted: number;
  /** Open when every attempt had settled (connected, and not closed by the agent within the grace). */
  open: number;
  /** Reset or closed by the agent (a reset at accept may reach the client before its connect completes). */
  closedByAgent: number;
  /** Failed otherwise (the kernel's backlog or the source's ports ran out), by error code. */
  failed: Record<string, number>;
  /** TLS handshakes completed (with tls). */
  secured: number;
}

export interface HandshakeReport {
  handshakes: number;
  failed: number;
  ms: number;
}

export interface RunningFlood<T> {
  /** The report: at the end of a connect or handshakes job; once every connection settled for hold. */
  readonly report: Promise<T>;
  /** Closes every held socket and ends the worker. */
  stop(): Promise<void>;
}

/** Starts `job` in a worker thread. */
export function startFlood<T extends ConnectReport | HoldReport | HandshakeReport>(job: FloodJob): RunningFlood<T> {
  const worker = new Worker(new URL(import.meta.url), { workerData: job });
  const report = new Promise<T>((resolve, reject) => {
    worker.once('message', (message: T) => resolve(message));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`flood worker exited with ${code} before reporting`)));
  });
  report.catch(() => undefined); // the caller awaits it; stop() alone must not leave an unhandled rejection
  return {
    report,
    async stop() {
      worker.postMessage('stop');
      await new Promise((resolve) => {
        worker.once('exit', resolve);
        setTimeout(() => void worker.terminate(), 5_000).unref();
      });
    },
  };
}

/** A real ClientHello, as the first bytes a TLS client sends: captured from node:tls against a silent server. */
async function captureClientHello(): Promise<Buffer> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const hello = new Promise<Buffer>((resolve) => server.once('connection', (socket) => socket.once('data', (chunk: Buffer) => {
    resolve(chunk);
    socket.destroy();
  })));
  const client = connectTls({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, servername: 'localhost' });
  client.on('error', () => undefined);
  const bytes = await hello;
  client.destroy();
  server.close();
  return bytes;
}

/** Runs `start(i)` for i < count, at most `concurrency` at once; each resolves when its connection settled. */
async function pool(count: number, concurrency: number, start: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) await start(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
}

async function connectJob(job: Extract<FloodJob, { kind: 'connect' }>): Promise<ConnectReport> {
  const hello = await captureClientHello();
  const report: ConnectReport = { connects: 0, established: 0, answered: 0, resets: 0, fins: 0, hung: 0, otherErrors: {}, ms: 0 };
  const started = performance.now();
  await pool(job.count, job.concurrency, async (index) => {
    const due = job.perSecond === undefined ? 0 : started + (index * 1000) / job.perSecond - performance.now();
    if (due > 0) await sleep(due);
    await connectOnce(job, index, hello, report);
  });
  report.ms = performance.now() - started;
  return report;
}

/** One connection of a connect job: ClientHello out, then whatever the agent does, into the report. */
function connectOnce(job: Extract<FloodJob, { kind: 'connect' }>, index: number, hello: Buffer, report: ConnectReport): Promise<void> {
  return new Promise<void>((settled) => {
    report.connects++;
    const socket = connectTcp({ host: '127.0.0.1', port: job.port, localAddress: job.sources[index % job.sources.length] });
    let answered = false;
    let error: string | undefined;
    const timer = setTimeout(() => {
      report.hung++;
      socket.destroy();
    }, job.timeoutMs);
    socket.once('connect', () => {
      report.established++;
      socket.write(hello);
    });
    socket.on('data', () => { answered = true; });
    socket.on('error', (cause: NodeJS.ErrnoException) => { error = cause.code ?? cause.message; });
    socket.once('close', () => {
      clearTimeout(timer);
      if (answered) report.answered++;
      // a reset can surface as EPIPE when it races the ClientHello's write
      if (error === 'ECONNRESET' || error === 'EPIPE') report.resets++;
      else if (error === undefined) report.fins++;
      else report.otherErrors[error] = (report.otherErrors[error] ?? 0) + 1;
      settled();
    });
  });
}

/** An attacker's TLS client: it trusts anything. tls.connect passes localAddress on to net.connect (untyped there). */
function tlsOptions(options: { host: string; port: number; localAddress: string | undefined }): ConnectionOptions {
  return { ...options, servername: 'localhost', rejectUnauthorized: false } as ConnectionOptions;
}

/** How long after the last connect the held ones are counted: the agent refuses at accept, well within it. */
const HOLD_GRACE_MS = 500;

async function holdJob(job: Extract<FloodJob, { kind: 'hold' }>, held: Set<Socket>): Promise<HoldReport> {
  const report: HoldReport = { attempted: 0, open: 0, closedByAgent: 0, failed: {}, secured: 0 };
  const count = job.perSource * job.sources.length;
  await pool(count, job.concurrency, (index) => new Promise<void>((settled) => {
    report.attempted++;
    const options = { host: '127.0.0.1', port: job.port, localAddress: job.sources[index % job.sources.length] };
    const socket: Socket = job.tls ? connectTls(tlsOptions(options)) : connectTcp(options);
    let error: string | undefined;
    socket.on('error', (cause: NodeJS.ErrnoException) => { error = cause.code ?? cause.message; });
    socket.once('connect', () => {
      held.add(socket);
      if (!job.tls) settled();
    });
    socket.once('secureConnect', () => {
      report.secured++;
      settled();
    });
    socket.once('close', () => {
      held.delete(socket);
      if (error === undefined || error === 'ECONNRESET' || error === 'EPIPE') report.closedByAgent++;
      else report.failed[error] = (report.failed[error] ?? 0) + 1;
      settled(); // a second call of a settled promise's resolve is a no-op
    });
  }));
  await new Promise((resolve) => setTimeout(resolve, HOLD_GRACE_MS));
  report.open = held.size;
  return report;
}

async function handshakesJob(job: Extract<FloodJob, { kind: 'handshakes' }>): Promise<HandshakeReport> {
  const report: HandshakeReport = { handshakes: 0, failed: 0, ms: 0 };
  const started = performance.now();
  const deadline = Date.now() + job.durationMs;
  const lane = async (): Promise<void> => {
    while (Date.now() < deadline) {
      await new Promise<void>((settled) => {
        const socket = connectTls(tlsOptions({ host: '127.0.0.1', port: job.port, localAddress: job.source }));
        socket.once('secureConnect', () => {
          report.handshakes++;
          socket.destroy();
        });
        socket.on('error', () => { report.failed++; });
        socket.once('close', () => settled());
      });
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, lane));
  report.ms = performance.now() - started;
  return report;
}

// the worker itself (node --test also loads this file as a test file in the main thread: then it does nothing)
if (!isMainThread && parentPort) {
  const port = parentPort;
  const job = workerData as FloodJob;
  const held = new Set<Socket>();
  port.on('message', () => {
    for (const socket of held) socket.destroy();
    process.exit(0);
  });
  const run = job.kind === 'connect' ? connectJob(job) : job.kind === 'hold' ? holdJob(job, held) : handshakesJob(job);
  run.then((report) => port.postMessage(report), (error: Error) => { throw error; });
}
