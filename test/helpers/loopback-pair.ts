import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCli, stopChild } from './cli.js';
import { freePort } from './ports.js';

/**
 * A rendezvous and one agent "home" registered with it, both on loopback: the configs in a fresh folder,
 * and the two programs started as `homeport rendezvous` and `homeport agent` child processes.
 */

const LOOPBACK_SECRET = 'loopback-secret-0123456789';

export interface LoopbackAgentOptions {
  /** The agent's [whitelist] allow value, as TOML. Default ["127.0.0.1/32"]. */
  allow?: string;
  /** Where the agent's one [[route]] forwards. Default a loopback port nothing serves. */
  target?: string;
  /** Lines added to the agent's [rendezvous] section, e.g. a reregister schedule. */
  rendezvousLines?: string;
  /** An [admin] section: the agent's admin API on this port, its rendezvousUrl this rendezvous, plus `lines`. */
  admin?: { port: number; lines?: string };
  /** The agent's [tls] section, as TOML lines (and its sub-tables); default none (self-signed). */
  tls?: string;
}

export interface LoopbackOptions {
  /** The temp folder's name prefix, so a leftover folder names its test. */
  prefix?: string;
  agent?: LoopbackAgentOptions;
  /** Lines added to the rendezvous's [[agent]] entry for "home", e.g. a relay port. */
  agentEntryLines?: string;
  /** Lines added to the rendezvous's [rendezvous] section, e.g. acmeHttp. */
  rendezvousLines?: string;
  /** The rendezvous's [tls] section, as TOML lines (and its sub-tables); default none (self-signed). */
  rendezvousTls?: string;
}

export interface LoopbackConfigs {
  dir: string;
  rendezvousConfig: string;
  agentConfig: string;
  /** The rendezvous's control and HTTPS ports. */
  ports: { control: number; http: number };
  /** The stateDir of each program (the rendezvous's CA is in rendezvousState/certs/ca.pem). */
  rendezvousState: string;
  agentState: string;
}

type StartedCli = Awaited<ReturnType<typeof startCli>>;

export interface LoopbackPair extends LoopbackConfigs {
  rendezvous: StartedCli;
  agent: StartedCli;
  /** Stops both programs (those still running) and removes the folder. */
  stop(): Promise<void>;
}

function rendezvousToml(ports: LoopbackConfigs['ports'], { agentEntryLines = '', rendezvousLines = '', rendezvousTls }: LoopbackOptions): string {
  return `
[rendezvous]
control = "127.0.0.1:${ports.control}"
http = "127.0.0.1:${ports.http}"
stateDir = "./rv"
heartbeat = "1s"
${rendezvousLines}
[stun]
listen = "127.0.0.1:0"
[[agent]]
name = "home"
secret = "${LOOPBACK_SECRET}"
${agentEntryLines}${rendezvousTls ? `\n[tls]\n${rendezvousTls}` : ''}`;
}

function agentToml(ports: LoopbackConfigs['ports'], options: LoopbackAgentOptions): string {
  const admin = options.admin && `
[admin]
listen = "127.0.0.1:${options.admin.port}"
rendezvousUrl = "https://127.0.0.1:${ports.http}"
${options.admin.lines ?? ''}`;
  return `
[agent]
name = "home"
listen = "127.0.0.1:0"
stateDir = "./agent"
[whitelist]
allow = ${options.allow ?? '["127.0.0.1/32"]'}
[[route]]
target = "${options.target ?? 'http://127.0.0.1:9'}"
[rendezvous]
server = "127.0.0.1:${ports.control}"
secret = "${LOOPBACK_SECRET}"
heartbeat = "1s"
${options.rendezvousLines ?? ''}${admin ?? ''}${options.tls ? `
[tls]
${options.tls}` : ''}`;
}

/** Writes another agent config for the same rendezvous, next to the pair's own, e.g. with other [admin] lines. */
export async function writeAgentConfig(configs: Pick<LoopbackConfigs, 'dir' | 'ports'>, name: string, options: LoopbackAgentOptions): Promise<string> {
  const file = join(configs.dir, name);
  await writeFile(file, agentToml(configs.ports, options));
  return file;
}

/** Writes rendezvous.toml and agent.toml on free loopback ports into a fresh folder. */
export async function writeLoopbackConfigs(options: LoopbackOptions = {}): Promise<LoopbackConfigs> {
  const dir = await mkdtemp(join(tmpdir(), options.prefix ?? 'hp-loopback-'));
  const ports = { control: await freePort(), http: await freePort() };
  const rendezvousConfig = join(dir, 'rendezvous.toml');
  await writeFile(rendezvousConfig, rendezvousToml(ports, options));
  const agentConfig = await writeAgentConfig({ dir, ports }, 'agent.toml', options.agent ?? {});
  return { dir, rendezvousConfig, agentConfig, ports, rendezvousState: join(dir, 'rv'), agentState: join(dir, 'agent') };
}

/** Writes the configs and starts the rendezvous, then the agent; resolves once the agent has registered. */
export async function startLoopbackPair(options: LoopbackOptions = {}): Promise<LoopbackPair> {
  const configs = await writeLoopbackConfigs(options);
  const rendezvous = await startCli(['rendezvous', '--config', configs.rendezvousConfig], /rendezvous listening/);
  let agent: StartedCli;
  try {
    agent = await startCli(['agent', '--config', configs.agentConfig], /"msg":"registered with the rendezvous"/);
  } catch (error) {
    await stopChild(rendezvous.child);
    throw error;
  }
  const stop = async (): Promise<void> => {
    await Promise.all([stopChild(agent.child), stopChild(rendezvous.child)]);
    await rm(configs.dir, { recursive: true, force: true });
  };
  return { ...configs, rendezvous, agent, stop };
}
