import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type RunningAgent } from '../../src/agent/agent.js';
import { loadAgentConfig } from '../../src/config/agent.js';
import { captureLogs, type LogLine } from './logs.js';

export interface AgentFixture {
  agent: RunningAgent;
  dir: string;
  configFile: string;
  /** The local CA that signed the agent's certificate. */
  ca: string;
  logs: LogLine[];
  close(): Promise<void>;
}

/** Writes an agent.toml for a loopback agent in a fresh folder and starts it in this process. */
export async function startAgentFixture(options: { target: string; allow?: string[]; extra?: string }): Promise<AgentFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-agent-'));
  const configFile = join(dir, 'agent.toml');
  const allow = (options.allow ?? ['127.0.0.1/32']).map((entry) => `"${entry}"`).join(', ');
  await writeFile(configFile, `
[agent]
name = "test"
listen = "127.0.0.1:0"
[tls]
hostnames = ["localhost", "127.0.0.1"]
[whitelist]
allow = [${allow}]
[[route]]
host = "*"
path = "/"
target = "${options.target}"
${options.extra ?? ''}
`);
  const { logger, lines: logs } = captureLogs();
  const agent = await startAgent(await loadAgentConfig(configFile), logger);
  const ca = await readFile(join(dir, 'state', 'certs', 'ca.pem'), 'utf8');
  return { agent, dir, configFile, ca, logs, close: () => agent.close() };
}

export interface FetchResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** One HTTPS request to the fixture, verifying its certificate against the fixture's CA. */
export function fetchTls(fixture: AgentFixture, path: string, options: RequestOptions & { body?: Buffer | string } = {}): Promise<FetchResult> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: fixture.agent.port,
      servername: 'localhost',
      ca: fixture.ca,
      path,
      agent: false,
      ...options,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
