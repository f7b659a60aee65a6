import { randomBytes, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent, type RunningAgent } from '../agent/agent.js';
import { createLogger, flushLogger, type Logger } from '../common/logger.js';
import { loadAgentConfig } from '../config/agent.js';
import { createMediaServer } from '../demo/media-server.js';
import { type Command, EXIT, parseFlags, UsageError } from './command.js';
import { runUntilSignal } from './daemon.js';

const SAMPLE_BYTES = 32 * 1024 * 1024;
const DEFAULT_PORT = 25305;

export const demoCommand: Command = {
  name: 'demo',
  summary: 'run a working demo on loopback: a sample media server behind the agent',
  help: `Usage: homeport demo [--dir <folder>] [--port <n>]

Starts, on 127.0.0.1 only, a sample "LAN media server" with a 32 MiB test file (Range requests work) and
the agent in front of it with a self-signed certificate and the whitelist 127.0.0.1/32 and ::1/128.
Prints the URL, the CA fingerprint and a curl command that works. Ctrl-C stops everything.

Options:
  --dir <folder>   where the demo keeps its config, certificates and test file
                   (default: <tmp>/homeport-demo; kept, so the CA stays the same between runs)
  --port <n>       the agent's port (default ${DEFAULT_PORT}; 0 picks a free one; a busy default falls back to a free one)
  -h, --help       show this help`,
  async run(argv) {
    const { values } = parseFlags(argv, { dir: { type: 'string' }, port: { type: 'string' } });
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const port = values.port === undefined ? DEFAULT_PORT : Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port "${values.port}" must be a number from 0 to 65535`);
    const dir = values.dir ?? join(tmpdir(), 'homeport-demo');
    await mkdir(dir, { recursive: true });
    const sample = await ensureSampleFile(join(dir, 'movie.bin'));

    const media = createMediaServer(sample.path);
    await new Promise<void>((resolve) => media.listen(0, '127.0.0.1', resolve));
    const logger = createLogger({ destination: 2 }); // stdout is for the summary below, logs go to stderr
    const agent = await startDemoAgent(dir, (media.address() as AddressInfo).port, port, values.port !== undefined, logger);
    printSummary(dir, agent, sample.sha256);
    await runUntilSignal({
      reload: () => agent.reload(),
      close: async () => {
        await agent.close();
        media.closeAllConnections();
        await new Promise((resolve) => media.close(resolve));
      },
    }, logger);
    flushLogger(logger);
    return EXIT.ok;
  },
};

async function ensureSampleFile(path: string): Promise<{ path: string; sha256: string }> {
  if (!existsSync(path)) await writeFile(path, randomBytes(SAMPLE_BYTES));
  const sha256 = createHash('sha256').update(await readFile(path)).digest('hex');
  return { path, sha256 };
}

/** Writes a real agent.toml (a working example to copy) and starts the agent from it. */
async function startDemoAgent(dir: string, mediaPort: number, port: number, portChosen: boolean, logger: Logger): Promise<RunningAgent> {
  const configFile = join(dir, 'agent.toml');
  const write = (agentPort: number) => writeFile(configFile, demoConfig(agentPort, mediaPort));
  await write(port);
  try {
    return await startAgent(await loadAgentConfig(configFile), logger);
  } catch (error) {
    if (portChosen || !/cannot be bound: another program/.test((error as Error).message)) throw error;
    logger.warn(`port ${port} is busy; using a free port instead`);
    await write(0);
    return startAgent(await loadAgentConfig(configFile), logger);
  }
}

function demoConfig(agentPort: number, mediaPort: number): string {
  return `# Written by "homeport demo": a complete agent configuration, on loopback only.
[agent]
name = "demo"
listen = "127.0.0.1:${agentPort}"
stateDir = "./state"

[tls]
mode = "selfsigned"
certDir = "./certs"
hostnames = ["localhost", "127.0.0.1", "::1"]

[whitelist]
allow = ["127.0.0.1/32", "::1/128"]

[[route]]
host = "*"
path = "/"
target = "http://127.0.0.1:${mediaPort}"
`;
}

function printSummary(dir: string, agent: RunningAgent, sha256: string): void {
  const ca = join(dir, 'certs', 'ca.pem');
  const url = `https://localhost:${agent.port}/movie.bin`;
  console.log(`
homeport demo is running (loopback only). Ctrl-C stops it.

  URL:          ${url}
  config:       ${join(dir, 'agent.toml')}
${agent.certificates.describe().map((line) => `  ${line}`).join('\n')}
  movie.bin:    ${SAMPLE_BYTES} bytes, sha256 ${sha256}

Try it:
  curl --cacert '${ca}' ${url} -o /dev/null -w '%{http_code} %{size_download} bytes\\n'
  curl --cacert '${ca}' -r 0-99 ${url} -o /dev/null -w '%{http_code} %{size_download} bytes\\n'
`);
}
