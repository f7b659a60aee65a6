import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMediaServer } from '../../src/demo/media-server.js';
import { startLoopbackPair, type LoopbackOptions, type LoopbackPair } from './loopback-pair.js';

/**
 * Shared by the relay and `homeport connect` tests: a random "movie" served by a small upstream (the
 * media server, plus /xff that echoes the X-Forwarded-For it received), a loopback rendezvous + agent
 * routed to it, and curl run as a child process without blocking this process's event loop (the upstream
 * lives in it).
 */

export interface Movie {
  dir: string;
  file: string;
  bytes: Buffer;
  sha: string;
  remove(): Promise<void>;
}

export async function writeMovie(size: number, name = 'movie.bin'): Promise<Movie> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-movie-'));
  const bytes = randomBytes(size);
  const file = join(dir, name);
  await writeFile(file, bytes);
  return { dir, file, bytes, sha: sha256(bytes), remove: () => rm(dir, { recursive: true, force: true }) };
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export interface Upstream {
  port: number;
  /** X-Forwarded-For of every /xff request, in order. */
  forwardedFor: (string | undefined)[];
  close(): Promise<void>;
}

/** Bytes a second of GET /slow: a download slow at its source, so that the client reads as fast as it comes. */
export const SLOW_BYTES_PER_SECOND = 200_000;

/**
 * The LAN service behind the agent: the media server for the file, GET /xff answering its X-Forwarded-For,
 * and GET /slow sending the same file at SLOW_BYTES_PER_SECOND.
 */
export async function startUpstream(file: string): Promise<Upstream> {
  const media = createMediaServer(file);
  const forwardedFor: (string | undefined)[] = [];
  const bytes = await readFile(file);
  const server: Server = createServer((req, res) => {
    if (req.url === '/xff') {
      const header = req.headers['x-forwarded-for'];
      forwardedFor.push(Array.isArray(header) ? header.join(', ') : header);
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`x-forwarded-for: ${header ?? '(none)'}\n`);
      return;
    }
    if (req.url === '/slow') return sendSlowly(res, bytes);
    media.emit('request', req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    forwardedFor,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The whole of `bytes` with a Content-Length, a tenth of a second's worth at a time. */
function sendSlowly(res: ServerResponse, bytes: Buffer): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
  const step = SLOW_BYTES_PER_SECOND / 10;
  let sent = 0;
  const timer = setInterval(() => {
    if (res.destroyed) return clearInterval(timer);
    res.write(bytes.subarray(sent, sent + step));
    sent += step;
    if (sent >= bytes.length) {
      clearInterval(timer);
      res.end();
    }
  }, 100);
  res.once('close', () => clearInterval(timer));
}

export interface RelayPair extends LoopbackPair {
  /** A CA bundle with both the rendezvous's and the agent's CA: curl -L crosses from one to the other. */
  caBundle: string;
  agentCa: string;
  rendezvousCa: string;
}

/** startLoopbackPair, plus one CA file for curl that trusts both programs' self-signed certificates. */
export async function startRelayPair(options: LoopbackOptions): Promise<RelayPair> {
  const pair = await startLoopbackPair(options);
  try {
    const agentCa = join(pair.agentState, 'certs', 'ca.pem');
    const rendezvousCa = join(pair.rendezvousState, 'certs', 'ca.pem');
    const caBundle = join(pair.dir, 'ca-bundle.pem');
    await writeFile(caBundle, `${await readFile(rendezvousCa, 'utf8')}\n${await readFile(agentCa, 'utf8')}`);
    return { ...pair, caBundle, agentCa, rendezvousCa };
  } catch (error) {
    await pair.stop();
    throw error;
  }
}

/** The agent's punched (public) port on loopback, from its "registered" line. */
export function agentPortOf(output: string): number {
  const match = /"localPort":(\d+)[^\n]*"msg":"registered with the rendezvous"/.exec(output);
  if (!match) throw new Error(`no "registered" line with localPort in:\n${output.slice(-2000)}`);
  return Number(match[1]);
}

/** Polls `output()` until `pattern` matches the text after `from` characters; throws with the tail after `timeoutMs`. */
export async function waitForLine(output: () => string, pattern: RegExp, timeoutMs = 10_000, from = 0): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(output().slice(from));
    if (match) return match;
    if (Date.now() > deadline) throw new Error(`no line matching ${pattern} within ${timeoutMs} ms:\n${output().slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface CurlResult {
  exitCode: number | null;
  /** curl's -w output (see curl()). */
  info: string;
  body: Buffer;
  stderr: string;
  ms: number;
}

/** Marks where curl's -w output starts on stdout, after the body. */
const INFO_MARK = '\n@@curl-info@@ ';

function collect(child: ReturnType<typeof spawn>, started: number): { done: Promise<CurlResult>; received: () => number } {
  const chunks: Buffer[] = [];
  let received = 0;
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => { received += chunk.length; chunks.push(chunk); });
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk; });
  const done = new Promise<CurlResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (exitCode) => {
      const all = Buffer.concat(chunks);
      const at = all.lastIndexOf(INFO_MARK);
      const body = at < 0 ? all : all.subarray(0, at);
      const info = at < 0 ? '' : all.subarray(at + INFO_MARK.length).toString();
      resolve({ exitCode, info, body, stderr, ms: Date.now() - started });
    });
  });
  return { done, received: () => received };
}

/** curl as a child process (-sS): the body from stdout, then the -w `write` line, default "<http_code> <num_redirects> <url_effective>". */
export function curl(args: string[], options: { timeoutMs?: number; write?: string } = {}): Promise<CurlResult> {
  const write = options.write ?? '%{http_code} %{num_redirects} %{url_effective}';
  const child = spawn('curl', ['-sS', '--max-time', String((options.timeoutMs ?? 20_000) / 1000), '-w', `${INFO_MARK}${write}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return collect(child, Date.now()).done;
}

/** Starts curl and hands back the child, for a download to be cut in the middle; -w gives "<http_code>". */
export function startCurl(args: string[]): { child: ReturnType<typeof spawn>; done: Promise<CurlResult>; received: () => number } {
  const child = spawn('curl', ['-sS', '-w', `${INFO_MARK}%{http_code}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return { child, ...collect(child, Date.now()) };
}
