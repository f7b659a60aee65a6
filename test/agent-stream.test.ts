import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { get } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { startCli, stopChild, rssBytes } from './helpers/cli.js';

const GIB = 1024 ** 3;
const CHUNK = Buffer.alloc(1024 * 1024, 0x5a);

let upstream: Server;
let agent: ChildProcess;
let port: number;
let ca: string;
const upstreamClosed: number[] = [];

/** Writes `total` bytes generated on the fly, respecting backpressure, so the upstream needs no disk. */
function stream(res: ServerResponse, total: number): void {
  let sent = 0;
  const pump = (): void => {
    while (sent < total) {
      sent += CHUNK.length;
      if (!res.write(CHUNK)) return void res.once('drain', pump);
    }
    res.end();
  };
  pump();
}

before(async () => {
  upstream = createServer((req, res) => {
    const size = req.url === '/gib' ? GIB : 256 * 1024 * 1024;
    res.on('close', () => { if (!res.writableFinished) upstreamClosed.push(Date.now()); });
    res.writeHead(200, { 'Content-Length': size, 'Content-Type': 'application/octet-stream' });
    stream(res, size);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const dir = await mkdtemp(join(tmpdir(), 'hp-stream-'));
  await writeFile(join(dir, 'agent.toml'), `
[agent]
listen = "127.0.0.1:0"
[whitelist]
allow = ["127.0.0.1/32"]
[[route]]
target = "http://127.0.0.1:${(upstream.address() as AddressInfo).port}"
`);
  const started = await startCli(['agent', '--config', join(dir, 'agent.toml')], /"listen":"127\.0\.0\.1:(\d+)"/);
  agent = started.child;
  port = Number(started.match[1]);
  ca = await readFile(join(dir, 'state', 'certs', 'ca.pem'), 'utf8');
});

after(async () => {
  if (agent) await stopChild(agent);
  upstream?.close();
});

function download(path: string, onChunk: (bytes: number) => void): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, servername: 'localhost', ca, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => { bytes += chunk.length; onChunk(bytes); });
      res.on('end', () => resolve(bytes));
      res.on('error', reject);
    }).on('error', reject);
  });
}

test('a 1 GiB download streams through the agent with flat memory (RSS growth under 64 MB)', async () => {
  await download('/warmup', () => undefined); // 256 MiB: reach steady state before the baseline
  const baseline = await rssBytes(agent.pid!);
  let peak = baseline;
  const sampler = setInterval(() => { rssBytes(agent.pid!).then((rss) => { peak = Math.max(peak, rss); }, () => undefined); }, 50);
  const bytes = await download('/gib', () => undefined);
  clearInterval(sampler);
  peak = Math.max(peak, await rssBytes(agent.pid!));
  assert.equal(bytes, GIB);
  const growthMb = (peak - baseline) / 1e6;
  assert.ok(growthMb < 64, `RSS grew by ${growthMb.toFixed(1)} MB (baseline ${(baseline / 1e6).toFixed(1)} MB)`);
});

test('a client that aborts a download releases the upstream connection within 2 s', async () => {
  for (let round = 0; round < 5; round++) {
    const before = upstreamClosed.length;
    const aborted = Date.now();
    await new Promise<void>((resolve, reject) => {
      const req = get({ host: '127.0.0.1', port, path: '/gib', servername: 'localhost', ca, agent: false }, (res) => {
        res.once('data', () => { req.destroy(); resolve(); });
      });
      req.on('error', (error: NodeJS.ErrnoException) => { if (!req.destroyed) reject(error); });
    });
    const deadline = aborted + 2000;
    while (upstreamClosed.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.equal(upstreamClosed.length, before + 1, `round ${round}: the upstream response was not closed within 2 s`);
  }
});
