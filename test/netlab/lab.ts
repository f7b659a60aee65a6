// The NAT lab harness for node:test: builds a small internet of network namespaces with real Linux NAT (the
// lab-*.sh scripts beside this file), runs programs inside it as children driven over the Node IPC channel,
// and tears everything down again. How it is built and how to clean up after a crash: README.md.
//
//   const skip = skipReason();                      // one-line reason, or undefined; throws under CI=true
//   describe('…', { skip }, () => {
//     let lab: Lab;
//     before(async () => { lab = await startLab({ home: 'fc', remote: 'prc' }); });
//     after(() => lab?.down());                     // teardown runs even when a test failed
//     test('…', async () => { const agent = lab.spawn('home', [process.execPath, 'agent.js']); … });
//   });
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Mailbox } from './mailbox.js';

/** fc full cone, arc address-restricted cone, prc port-restricted cone, sym symmetric (see lab-nat.sh). */
export type NatType = 'fc' | 'arc' | 'prc' | 'sym';
export const NAT_TYPES: readonly NatType[] = ['fc', 'arc', 'prc', 'sym'];
/**
 * What a lab router does: one of the NAT types, or no NAT at all: `none` routes everything both ways (the LAN
 * host is on the open internet), `fw` is a CPE-like stateful firewall without NAT that drops unsolicited
 * inbound packets (RFC 3489's "Symmetric UDP Firewall").
 */
export type RouterType = NatType | 'none' | 'fw';
export const ROUTER_TYPES: readonly RouterType[] = ['none', 'fw', ...NAT_TYPES];
export type LabNode = 'wan' | 'home-router' | 'home' | 'remote-router' | 'remote';
export type Router = 'home-router' | 'remote-router';
export type LabAvailability = { ok: true } | { ok: false; reason: string };

export interface LabAddresses {
  /** hp-wan's two public addresses, for the rendezvous and anything STUN-like */
  readonly rendezvous: string;
  readonly rendezvousAlt: string;
  readonly home: string;
  readonly homeGateway: string;
  /** changes with rebootRouter('home-router', { newWanAddress }) */
  readonly homeRouterWan: string;
  readonly remote: string;
  readonly remoteGateway: string;
  readonly remoteRouterWan: string;
}

export interface LabOptions {
  home: RouterType;
  remote: RouterType;
}

export interface LabSpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CommandOutput {
  stdout: string;
  stderr: string;
}

// The address plan of lab-up.sh
const FIXED_ADDRESSES = {
  rendezvous: '203.0.113.10',
  rendezvousAlt: '203.0.113.11',
  home: '10.10.0.2',
  homeGateway: '10.10.0.1',
  remote: '10.20.0.2',
  remoteGateway: '10.20.0.1',
} as const;
const WAN_SUBNETS: Record<Router, { prefix: string; initial: string }> = {
  'home-router': { prefix: '198.51.100', initial: '198.51.100.2' },
  'remote-router': { prefix: '192.0.2', initial: '192.0.2.2' },
};
const LAB_NODES: readonly LabNode[] = ['wan', 'home-router', 'home', 'remote-router', 'remote'];
/** A program a test needs on PATH and the Debian package that has it. */
export type Tool = readonly [program: string, packageName: string];
const REQUIRED_TOOLS: readonly Tool[] = [
  ['ip', 'iproute2'],
  ['nft', 'nftables'],
  ['conntrack', 'conntrack'],
  ['bash', 'bash'],
] as const;
const COMMAND_TIMEOUT_MS = 15_000;
const OUTPUT_LIMIT = 64 * 1024;

const moduleDir = path.dirname(fileURLToPath(import.meta.url));
// tsc emits this module to dist/test/netlab/ but the shell scripts stay in test/netlab/
const scriptDir = existsSync(path.join(moduleDir, 'lab-up.sh'))
  ? moduleDir
  : path.resolve(moduleDir, '../../../test/netlab');
const script = (name: string): string => path.join(scriptDir, name);

// ---- availability ------------------------------------------------------------------------------------------

let availability: LabAvailability | undefined;

/** Whether the lab can run here (probed once per process: Linux, root, tools, a throwaway namespace). */
export function labAvailability(): LabAvailability {
  availability ??= probeAvailability();
  return availability;
}

/**
 * For `test(…, { skip })`: the one-line reason the lab (and the extra tools a test runs in it, as
 * [program, Debian package]) cannot run, or undefined when it can.
 * Under CI=true a lab that cannot run is a failure, so this throws instead.
 */
export function skipReason(extraTools: readonly Tool[] = []): string | undefined {
  const lab = labAvailability();
  const found = lab.ok ? toolsAvailability(extraTools) : lab;
  if (found.ok) return undefined;
  if (process.env.CI === 'true') throw new Error(`NAT lab required under CI=true but it cannot run: ${found.reason}`);
  return `NAT lab unavailable: ${found.reason}`;
}

function probeAvailability(): LabAvailability {
  if (process.platform !== 'linux') return unavailable(`network namespaces need Linux, this is ${process.platform}`);
  if (process.getuid?.() !== 0) return unavailable('ip netns and nftables need root (uid 0)');
  const tools = toolsAvailability(REQUIRED_TOOLS);
  if (!tools.ok) return tools;
  if (!existsSync(script('lab-up.sh'))) return unavailable(`lab scripts not found in ${scriptDir}`);
  return probeNamespace();
}

function probeNamespace(): LabAvailability {
  const probe = namespaceName('probe', newLabId());
  const added = runSync('ip', ['netns', 'add', probe]);
  if (!added.ok) return unavailable(`ip netns add failed: ${added.output}`);
  try {
    // the same nftables features (nat chains, dynamic maps) and conntrack the lab relies on
    const nat = runSync('bash', [script('lab-nat.sh'), probe, 'fc']);
    return nat.ok ? { ok: true } : unavailable(`nftables NAT or conntrack unusable in a namespace: ${nat.output}`);
  } finally {
    runSync('ip', ['netns', 'del', probe]);
  }
}

function toolsAvailability(tools: readonly Tool[]): LabAvailability {
  const missing = tools.find(([tool]) => !onPath(tool));
  return missing ? unavailable(`${missing[0]} is not on PATH (install ${missing[1]})`) : { ok: true };
}

function unavailable(reason: string): LabAvailability {
  return { ok: false, reason: reason.split('\n')[0]?.trim() ?? reason };
}

function onPath(tool: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(path.join(dir, tool), fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

// ---- commands ------------------------------------------------------------------------------------------------

function run(command: string, args: readonly string[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<CommandOutput> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${[command, ...args].join(' ')} failed: ${stderr.trim() || error.message}`));
      else resolve({ stdout, stderr });
    });
  });
}

function runSync(command: string, args: readonly string[]): { ok: boolean; output: string } {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
  return { ok: result.status === 0, output: `${result.stderr ?? ''}${result.error?.message ?? ''}`.trim() };
}

const runScript = (name: string, args: readonly string[]): Promise<CommandOutput> =>
  run('bash', [script(name), ...args]);

/** Names of all network namespaces (the lab's are hp-<node>-<lab id>). */
export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

// A lab id carries its owner's pid, so lab-down.sh --stale can tell the namespaces of dead runs
function newLabId(): string {
  return `${process.pid}-${randomBytes(2).toString('hex')}`;
}

function namespaceName(node: string, labId: string): string {
  return `hp-${node}-${labId}`;
}

// ---- children --------------------------------------------------------------------------------------------------

/** A program running inside a lab namespace, with an IPC channel and its output kept for diagnostics. */
export class LabChild {
  readonly process: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  private readonly messages = new Mailbox<unknown>();
  private capturedOutput = '';

  constructor(
    readonly node: LabNode,
    readonly command: readonly string[],
    child: ChildProcess,
  ) {
    this.process = child;
    child.stdout?.on('data', (chunk: Buffer) => this.capture(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.capture(chunk));
    child.on('message', (message) => this.messages.put(message));
    this.exited = new Promise((resolve) => {
      const ended = (status: ExitStatus, how: string): void => {
        this.messages.close(new Error(`${this.describe()} ${how}; its output:\n${this.output()}`));
        resolve(status);
      };
      child.once('exit', (code, signal) => ended({ code, signal }, `exited (${code ?? signal})`));
      child.once('error', (error) => ended({ code: null, signal: null }, `failed: ${error.message}`));
    });
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** stdout and stderr so far (the last 64 KiB). */
  output(): string {
    return this.capturedOutput;
  }

  send(message: unknown): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.process.connected) {
        reject(new Error(`${this.describe()} has no IPC channel any more`));
        return;
      }
      this.process.send(message as object, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** The first IPC message (already received or still to come) that matches; fails on timeout or exit. */
  async nextMessage(matches: (message: unknown) => boolean = () => true, timeoutMs = 10_000): Promise<unknown> {
    const message = await this.messages.take(matches, timeoutMs);
    if (message === undefined) {
      throw new Error(`no matching message from ${this.describe()} within ${timeoutMs} ms; its output:\n${this.output()}`);
    }
    return message;
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 1_000): Promise<ExitStatus> {
    if (!this.running) return this.exited;
    this.process.kill('SIGTERM');
    const killer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    const status = await this.exited;
    clearTimeout(killer);
    return status;
  }

  killNow(): void {
    if (this.running) this.process.kill('SIGKILL');
  }

  private capture(chunk: Buffer): void {
    this.capturedOutput = (this.capturedOutput + chunk.toString()).slice(-OUTPUT_LIMIT);
  }

  private describe(): string {
    return `'${this.command.join(' ')}' in ${this.node} (pid ${this.process.pid ?? 'none'})`;
  }
}

// ---- the lab ---------------------------------------------------------------------------------------------------

interface RouterState {
  nat: RouterType;
  /** which public port range lab-nat.sh uses; every reboot moves to the next one */
  boot: number;
  wanAddress: string;
}

export class Lab {
  /** namespace name of every node: hp-<node>-<lab id> */
  readonly names: Readonly<Record<LabNode, string>>;
  private readonly routers: Record<Router, RouterState>;
  private readonly children = new Set<LabChild>();
  private teardown: Promise<void> | undefined;

  constructor(
    readonly id: string,
    options: LabOptions,
  ) {
    this.names = Object.fromEntries(LAB_NODES.map((node) => [node, namespaceName(node, id)])) as Record<
      LabNode,
      string
    >;
    this.routers = {
      'home-router': { nat: options.home, boot: 0, wanAddress: WAN_SUBNETS['home-router'].initial },
      'remote-router': { nat: options.remote, boot: 0, wanAddress: WAN_SUBNETS['remote-router'].initial },
    };
  }

  /** The public port range a router allocates from in its current boot (as lab-nat.sh computes it). */
  portRange(router: Router): { low: number; high: number } {
    const low = 20000 + (this.routers[router].boot % 8) * 5000;
    return { low, high: low + 4999 };
  }

  get addresses(): LabAddresses {
    return {
      ...FIXED_ADDRESSES,
      homeRouterWan: this.routers['home-router'].wanAddress,
      remoteRouterWan: this.routers['remote-router'].wanAddress,
    };
  }

  /** Run command (program and arguments) inside node's namespace via `ip netns exec`, with an IPC channel. */
  spawn(node: LabNode, command: readonly string[], options: LabSpawnOptions = {}): LabChild {
    this.assertUp('spawn');
    const child = spawn('ip', ['netns', 'exec', this.names[node], ...command], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const labChild = new LabChild(node, command, child);
    this.children.add(labChild);
    void labChild.exited.then(() => this.children.delete(labChild));
    return labChild;
  }

  /** Run command inside node's namespace to completion; rejects with its stderr when it fails. */
  exec(node: LabNode, command: readonly string[], options: { timeoutMs?: number } = {}): Promise<CommandOutput> {
    this.assertUp('exec');
    return run('ip', ['netns', 'exec', this.names[node], ...command], options.timeoutMs);
  }

  /** Switch a router's type (a NAT or none/fw); this also flushes its conntrack table, so every mapping is forgotten. */
  async setNat(router: Router, nat: RouterType): Promise<void> {
    this.assertUp('setNat');
    const state = this.routers[router];
    await runScript('lab-nat.sh', [this.names[router], nat, String(state.boot)]);
    state.nat = nat;
  }

  /**
   * "Reboot" a router: forget every mapping and allocate public ports from another range, so every mapping
   * changes (a conntrack flush alone changes nothing visible); optionally the ISP hands out a new WAN
   * address in the router's /24. Open TCP connections through it get a RST on their next segment.
   */
  async rebootRouter(router: Router, options: { newWanAddress?: string } = {}): Promise<void> {
    this.assertUp('rebootRouter');
    const state = this.routers[router];
    if (options.newWanAddress !== undefined) {
      assertWanAddress(router, options.newWanAddress);
      await runScript('lab-wan-address.sh', [this.names[router], options.newWanAddress]);
      state.wanAddress = options.newWanAddress;
    }
    await runScript('lab-nat.sh', [this.names[router], state.nat, String(state.boot + 1)]);
    state.boot += 1;
  }

  /** Kill every child, delete every namespace. Safe to call more than once; call it from after()/t.after(). */
  down(): Promise<void> {
    this.teardown ??= this.tearDown();
    return this.teardown;
  }

  /** Synchronous teardown for the exit and signal backstops. */
  tearDownNow(): void {
    for (const child of this.children) child.killNow();
    runSync('bash', [script('lab-down.sh'), this.id]);
    backstops.delete(this);
  }

  private async tearDown(): Promise<void> {
    try {
      await Promise.all([...this.children].map((child) => child.stop()));
      await runScript('lab-down.sh', [this.id]);
    } finally {
      backstops.delete(this);
    }
    const left = (await listNamespaces()).filter((name) => name.endsWith(`-${this.id}`));
    if (left.length > 0) throw new Error(`lab ${this.id}: namespaces left after teardown: ${left.join(', ')}`);
  }

  private assertUp(action: string): void {
    if (this.teardown) throw new Error(`lab ${this.id} is down: cannot ${action}`);
  }
}

function assertWanAddress(router: Router, address: string): void {
  const { prefix } = WAN_SUBNETS[router];
  const host = address.startsWith(`${prefix}.`) ? Number(address.slice(prefix.length + 1)) : NaN;
  if (!Number.isInteger(host) || host < 2 || host > 254) {
    throw new Error(
      `rebootRouter(${router}): newWanAddress '${address}' must be ${prefix}.2 to ${prefix}.254 ` +
        `(${prefix}.1 is the wan side of the link)`,
    );
  }
}

/**
 * Build a lab: hp-wan (203.0.113.10 and .11), hp-home-router and hp-remote-router with the given NAT types,
 * hp-home and hp-remote behind them. Namespaces that dead runs left behind are removed first.
 */
export async function startLab(options: LabOptions): Promise<Lab> {
  const found = labAvailability();
  if (!found.ok) throw new Error(`NAT lab cannot run: ${found.reason}`);
  await runScript('lab-down.sh', ['--stale']);
  const lab = new Lab(newLabId(), options);
  backstops.add(lab); // before lab-up.sh, so even a crash halfway through is cleaned up on exit
  try {
    await runScript('lab-up.sh', [lab.id, options.home, options.remote]);
  } catch (error) {
    await lab.down().catch(() => undefined); // the build error is the one worth reporting
    throw error;
  }
  return lab;
}

// ---- backstops: when a test process exits or is interrupted without down(), the lab still goes ------------------

const TERMINATING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

const backstops = new (class LiveLabs {
  private readonly labs = new Set<Lab>();

  add(lab: Lab): void {
    if (this.labs.size === 0) this.install();
    this.labs.add(lab);
  }

  delete(lab: Lab): void {
    if (this.labs.delete(lab) && this.labs.size === 0) this.uninstall();
  }

  private readonly onExit = (): void => {
    for (const lab of [...this.labs]) lab.tearDownNow();
  };

  // tear down, then let the signal do what it would have done without us
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.onExit();
    this.uninstall();
    process.kill(process.pid, signal);
  };

  private install(): void {
    process.on('exit', this.onExit);
    for (const signal of TERMINATING_SIGNALS) process.on(signal, this.onSignal);
  }

  private uninstall(): void {
    process.off('exit', this.onExit);
    for (const signal of TERMINATING_SIGNALS) process.off(signal, this.onSignal);
  }
})();
