import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab, LabChild, LabNode } from './lab.js';

/** The built CLI and the media child, as the lab's programs run them. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const MEDIA_CHILD = fileURLToPath(new URL('./media-child.js', import.meta.url));

export const SECRET = 'lab-secret-0123456789abcdef';

/** Waits until a child's output matches, or fails with its output. */
export async function waitForOutput(child: LabChild, pattern: RegExp, timeoutMs = 15_000, from = 0): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(child.output().slice(from));
    if (match) return match;
    if (!child.running) throw new Error(`${pattern} never appeared; the program exited:\n${child.output()}`);
    if (Date.now() > deadline) throw new Error(`${pattern} did not appear within ${timeoutMs} ms:\n${child.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export function homeport(lab: Lab, node: LabNode, args: string[]): LabChild {
  return lab.spawn(node, [process.execPath, CLI, ...args]);
}

export async function startMedia(lab: Lab, file: string): Promise<number> {
  const media = lab.spawn('home', [process.execPath, MEDIA_CHILD, file]);
  const { listening } = (await media.nextMessage((m) => typeof (m as { listening?: number }).listening === 'number')) as { listening: number };
  return listening;
}

export interface LabSetup {
  dir: string;
  rendezvousConfig: string;
  agentConfig: string;
  /** CA bundle a client needs: the rendezvous's CA and the agent's CA. */
  bundle: string;
  /** Where the agent's onAddressChange hook appends "ip:port" lines. */
  hookLog: string;
}

/** Writes the rendezvous's and the agent's configs for the lab's addresses into a fresh folder. */
export async function writeLabConfigs(lab: Lab, mediaPort: number, options: { allow?: string[]; heartbeat?: string } = {}): Promise<LabSetup> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-lab-'));
  const { rendezvous } = lab.addresses;
  const heartbeat = options.heartbeat ?? '1s';
  const rendezvousConfig = join(dir, 'rendezvous.toml');
  await writeFile(rendezvousConfig, `
[rendezvous]
control = "${rendezvous}:7000"
http = "${rendezvous}:8443"
stateDir = "./rv-state"
heartbeat = "${heartbeat}"
probeInterval = "2s"
probeTimeout = "2s"
[tls]
certDir = "./rv-certs"
hostnames = ["${rendezvous}"]
[[agent]]
name = "home"
secret = "${SECRET}"
`);
  const agentConfig = join(dir, 'agent.toml');
  const allow = (options.allow ?? []).map((cidr) => `"${cidr}"`).join(', ');
  await writeFile(agentConfig, `
[agent]
name = "home"
listen = "0.0.0.0:15305"   # outside the lab routers' public port ranges, so mapped != local
stateDir = "./agent-state"
[tls]
certDir = "./agent-certs"
hostnames = ["198.51.100.2", "198.51.100.3", "198.51.100.4"]
[whitelist]
allow = [${allow}]
[[route]]
target = "http://127.0.0.1:${mediaPort}"
[rendezvous]
server = "${rendezvous}:7000"
secret = "${SECRET}"
heartbeat = "${heartbeat}"
onAddressChange = "echo $HOMEPORT_PUBLIC_IP:$HOMEPORT_PUBLIC_PORT >> '${join(dir, 'hook.log')}'"
`);
  return { dir, rendezvousConfig, agentConfig, bundle: join(dir, 'bundle.pem'), hookLog: join(dir, 'hook.log') };
}
