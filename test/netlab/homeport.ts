import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lab, LabChild, LabNode } from './lab.js';

/** The built CLI and the media child, as the lab's programs run them. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const MEDIA_CHILD = fileURLToPath(new URL('./media-child.js', import.meta.url));

export const SECRET = 'lab-secret-0123456789abcdef';
/** Where the lab's rendezvous answers STUN (its alternate, if any: rendezvousAlt:3479). */
export const HOMEPORT_STUN_PORT = 3478;

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
export interface LabConfigOptions {
  allow?: string[];
  heartbeat?: string;
  /** Lines added to the rendezvous's [[agent]] entry for "home", e.g. its relay port. */
  agentEntryLines?: string;
  /** The rendezvous's STUN server on rendezvous:3478: 'rfc5780' (the default) with `alternate` rendezvousAlt, 'plain' without. */
  stun?: 'rfc5780' | 'plain';
}

export async function writeLabConfigs(lab: Lab, mediaPort: number, options: LabConfigOptions = {}): Promise<LabSetup> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-lab-'));
  const { rendezvous, rendezvousAlt } = lab.addresses;
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
[stun]
listen = "${rendezvous}:${HOMEPORT_STUN_PORT}"
${options.stun === 'plain' ? '' : `alternate = "${rendezvousAlt}"`}
[tls]
certDir = "./rv-certs"
hostnames = ["${rendezvous}"]
[[agent]]
name = "home"
secret = "${SECRET}"
${options.agentEntryLines ?? ''}
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
hostnames = ["198.51.100.2", "198.51.100.3", "198.51.100.4", "${rendezvous}", "localhost"]   # direct, relay, homeport connect
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

/** What curl got: the status code, the redirect target, the SHA-256 of the body and its start as text. */
export interface Fetched { code: string; location: string; sha: string; body: string; exitCode: number }

/** The last answer curl gave, for the message of an `until` that times out. */
let lastAnswer = '';

/** curl from the remote client's namespace, through its NAT and the lab's "internet". */
export async function curlFromRemote(lab: Lab, setup: LabSetup, url: string, extra: string[] = []): Promise<Fetched> {
  const out = join(setup.dir, `curl-${randomBytes(4).toString('hex')}.out`);
  const args = ['curl', '-sS', '--cacert', setup.bundle, '--max-time', '20', '-o', out, '-w', '%{http_code} %{redirect_url}', ...extra, url];
  const child = lab.spawn('remote', args);
  const status = await child.exited;
  const [code = '', location = ''] = child.output().trim().split('\n').at(-1)!.split(' ');
  const body = await readFile(out).catch(() => Buffer.alloc(0));
  lastAnswer = `${url}: ${code} ${location} ${body.toString('latin1').slice(0, 300)}`;
  return { code, location, sha: createHash('sha256').update(body).digest('hex'), body: body.toString('latin1').slice(0, 2000), exitCode: status.code ?? -1 };
}

/** Retries `attempt` every 100 ms until it gives a value; fails after timeoutMs with `what`. */
export async function until<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await attempt();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; last answer: ${lastAnswer}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Media server with `file` at home, the rendezvous on the wan, the agent at home; resolves once it registered. */
export async function startHomeport(lab: Lab, file: Buffer, options: LabConfigOptions = {}): Promise<{ setup: LabSetup; rendezvous: LabChild; agent: LabChild }> {
  const moviePath = join((await writeLabConfigs(lab, 1)).dir, 'movie.bin');
  await writeFile(moviePath, file);
  const mediaPort = await startMedia(lab, moviePath);
  const setup = await writeLabConfigs(lab, mediaPort, options);
  const rendezvous = homeport(lab, 'wan', ['rendezvous', '--config', setup.rendezvousConfig]);
  await waitForOutput(rendezvous, /listening/);
  const agent = homeport(lab, 'home', ['agent', '--config', setup.agentConfig]);
  await waitForOutput(agent, /registered with the rendezvous/);
  const cas = await Promise.all([join(setup.dir, 'rv-certs', 'ca.pem'), join(setup.dir, 'agent-certs', 'ca.pem')].map((f) => readFile(f, 'utf8')));
  await writeFile(setup.bundle, cas.join(''));
  return { setup, rendezvous, agent };
}

/** The rendezvous alone in hp-wan, for its STUN server; `address` is where it answers STUN. */
export async function startStunRendezvous(lab: Lab, options: { alternate: boolean }): Promise<{ server: LabChild; address: string }> {
  const setup = await writeLabConfigs(lab, 1, { stun: options.alternate ? 'rfc5780' : 'plain' });
  const server = homeport(lab, 'wan', ['rendezvous', '--config', setup.rendezvousConfig]);
  await waitForOutput(server, /rendezvous listening/);
  return { server, address: `${lab.addresses.rendezvous}:${HOMEPORT_STUN_PORT}` };
}
