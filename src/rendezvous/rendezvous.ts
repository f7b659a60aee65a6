import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KeyStore, keyStorePath } from '../admin/key-store.js';
import type { Logger } from '../common/logger.js';
import { formatHostPort } from '../common/address.js';
import { ConfigError } from '../common/config-error.js';
import type { RendezvousConfig } from '../config/rendezvous-types.js';
import type { Socket } from 'node:net';
import { openCertificateSource, TlsSetupError, type CertificateSource } from '../tls/certificates.js';
import { formatAddress } from '../common/address.js';
import { AddressAllowList } from './addresses.js';
import { ControlServer, type ControlLimits, type ControlServerOptions } from './control-server.js';
import { closeHttpServer, listenOn } from '../common/listen.js';
import type { ProbeFunction, ProbeResult, ProbeTarget } from './prober.js';
import { ProbeScheduler } from './probe-scheduler.js';
import { Registry, type AgentRecord } from './registry.js';
import { RemoteAdmin } from './remote-admin.js';
import { createWebServer } from './web.js';
import { ConnectService } from './connect-service.js';
import { choosePath, type PathChoice, type RelayRoute } from './path.js';
import { RelayHub } from './relay.js';
import { StunServer, type StunPorts } from '../nat/stun-server.js';
import { packageVersion } from '../common/package-version.js';
import { startAcmeHttp, type AcmeHttp } from './acme-http.js';
import { AgentChallenges } from './acme-agents.js';
import { RENDEZVOUS_OWNER, type ChallengeStore } from './acme-challenges.js';

export interface RunningRendezvous {
  /** Ports actually bound (they differ from the config when it asked for port 0). */
  readonly controlPort: number;
  readonly httpPort: number;
  /** Agent → relay port bound, for the agents that have a relay. */
  readonly relayPorts: ReadonlyMap<string, number>;
  /** The port STUN is answered on (UDP and TCP); undefined when [stun] is off. */
  readonly stunPort: number | undefined;
  /** The plain-HTTP port answering HTTP-01 challenges; undefined without [rendezvous] acmeHttp. */
  readonly acmeHttpPort: number | undefined;
  readonly registry: Registry;
  readonly certificates: CertificateSource;
  /** SIGHUP: re-read the certificate files. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

/** Knobs for tests and benchmarks; the config file has the user-facing ones. */
export interface RendezvousOptions {
  controlLimits?: Partial<ControlLimits>;
  probe?: ProbeFunction;
  registryWriteDelayMs?: number;
  /** How long a forwarded admin request waits for the agent. */
  adminTimeoutMs?: number;
  /** How long a relayed user waits for a work connection when the pool is empty. */
  workWaitMs?: number;
}

/** Starts the rendezvous: HTTP-01 port, registry, certificates, control port for agents, HTTPS port for users, STUN. */
export async function startRendezvous(config: RendezvousConfig, logger: Logger, options: RendezvousOptions = {}): Promise<RunningRendezvous> {
  const settings = config.rendezvous;
  // bound first: the certificate source may start an HTTP-01 validation as soon as it opens
  const acme = settings.acmeHttp ? await startAcmeHttp(settings.acmeHttp, logger).catch((error: Error) => Promise.reject(new Error(`${config.file}: ${error.message}`))) : undefined;
  const { registry, keys, certificates } = await openState(config, logger, options, acme?.store).catch(async (error: unknown) => {
    await acme?.close();
    throw error;
  });
  const stun = createStunServer(config, logger);
  let stunPorts: StunPorts | undefined; // bound before the control port, so every welcome can tell it
  const control = new ControlServer({
    agents: config.agents,
    registry,
    heartbeatMs: settings.heartbeatMs,
    stunPort: () => stunPorts?.port,
    logger,
    ...(options.controlLimits ? { limits: options.controlLimits } : {}),
    ...(options.adminTimeoutMs !== undefined ? { adminTimeoutMs: options.adminTimeoutMs } : {}),
    ...(acme ? { acmeChallenge: agentChallenges(config, acme, logger) } : {}),
  });
  const allow = new AddressAllowList(settings.redirectAllow);
  const { relays, relayOf, pathFor } = createOtherPaths(config, registry, control, allow, logger, options);
  const prober = createProber(config, registry, control, pathFor, logger, options);
  control.on('registered', (agent, { record }, serverIp) => {
    prober.checkNow(agent, probeTarget(record, serverIp));
    relays.online(agent);
  });
  control.on('offline', (agent) => {
    prober.stop(agent);
    relays.offline(agent);
  });
  const admin = new RemoteAdmin({
    keys,
    agents: { lookup: (name) => registry.get(name), pathOf: pathFor, requestAdmin: (agent, order) => control.requestAdmin(agent, order) },
    logger,
    ...config.admin,
  });
  const web = createWebServer({
    certificates,
    directory: { lookup: (name) => registry.get(name), allow, relayOf, ...(settings.publicHost !== undefined ? { publicHost: settings.publicHost } : {}) },
    admin,
    logger,
  });

  const close = async (): Promise<void> => {
    prober.close();
    await Promise.all([control.close(), closeHttpServer(web), relays.close(), stun?.close(), acme?.close()]);
    certificates.close();
    await registry.close();
  };
  let ports: { controlPort: number; httpPort: number; relayPorts: Map<string, number> };
  try {
    stunPorts = await stun?.start();
    ports = { controlPort: await control.listen(settings.control), httpPort: await listenOn(web, settings.http, 'rendezvous.http'), relayPorts: await relays.listen() };
  } catch (error) {
    await close();
    throw new Error(`${config.file}: ${(error as Error).message}`);
  }
  const { controlPort, httpPort, relayPorts } = ports;
  logger.info({
    control: formatHostPort({ host: settings.control.host, port: controlPort }),
    http: formatHostPort({ host: settings.http.host, port: httpPort }),
    controlPort,
    httpPort,
    ...(relayPorts.size > 0 ? { relays: Object.fromEntries(relayPorts) } : {}),
    ...stunLogFields(config, stunPorts),
    ...(acme && settings.acmeHttp ? { acmeHttp: formatHostPort({ host: settings.acmeHttp.host, port: acme.port }), acmeHttpPort: acme.port } : {}),
    agents: config.agents.length,
  }, 'rendezvous listening');
  return { controlPort, httpPort, relayPorts, stunPort: stunPorts?.port, acmeHttpPort: acme?.port, registry, certificates, reload: () => certificates.reload(), close };
}

/** The agents' challenge requests, checked against their acmeHostnames, into the store acmeHttp answers from. */
function agentChallenges(config: RendezvousConfig, acme: AcmeHttp, logger: Logger): ControlServerOptions['acmeChallenge'] {
  const challenges = new AgentChallenges(config.agents, acme.store, logger);
  return (agent, order) => challenges.handle(agent, order);
}

/** The STUN server of [stun], not yet bound; undefined when it is off. */
function createStunServer(config: RendezvousConfig, logger: Logger): StunServer | undefined {
  if (!config.stun) return undefined;
  const { listen, alternate } = config.stun;
  return new StunServer({ listen, ...(alternate ? { alternate } : {}), software: `homeport ${packageVersion()}`, logger });
}

/** Where STUN listens, for the "rendezvous listening" line: "stun off" says why a NAT check finds nothing. */
function stunLogFields(config: RendezvousConfig, ports: StunPorts | undefined): Record<string, string | number> {
  if (!config.stun || !ports) return { stun: 'off' };
  const { listen, alternate } = config.stun;
  return {
    stun: formatHostPort({ host: listen.host, port: ports.port }),
    stunPort: ports.port,
    ...(alternate ? { stunAlternate: formatHostPort(alternate) } : {}),
  };
}

/**
 * The registry, the admin keys and the certificates: a key file or certificate it cannot trust stops the
 * start (fail closed). With acmeHttp, the rendezvous's own HTTP-01 challenges go into `challenges` too.
 */
async function openState(
  config: RendezvousConfig, logger: Logger, options: RendezvousOptions, challenges: ChallengeStore | undefined,
): Promise<{ registry: Registry; keys: KeyStore; certificates: CertificateSource }> {
  const settings = config.rendezvous;
  await mkdir(settings.stateDir, { recursive: true, mode: 0o700 });
  const registry = await Registry.open({
    file: join(settings.stateDir, 'registry.json'),
    agents: config.agents.map((agent) => agent.name),
    logger,
    ...(options.registryWriteDelayMs !== undefined ? { writeDelayMs: options.registryWriteDelayMs } : {}),
  });
  const keys = await KeyStore.open(keyStorePath(settings.stateDir), logger).catch((error: Error) => {
    throw new ConfigError([error.message]);
  });
  const http01 = challenges?.responder(RENDEZVOUS_OWNER);
  const certificates = await openCertificateSource(config.tls, logger, http01 ? { http01 } : {}).catch((error: unknown) => {
    throw error instanceof TlsSetupError ? new ConfigError([error.message]) : error;
  });
  return { registry, keys, certificates };
}

/**
 * The paths besides the redirect: the agents' relay ports, and `homeport connect`'s route and punch
 * requests on the control port. Side connections the control port hands over go to their owner here.
 */
function createOtherPaths(
  config: RendezvousConfig, registry: Registry, control: ControlServer, allow: AddressAllowList, logger: Logger, options: RendezvousOptions,
): { relays: RelayHub; relayOf: (name: string) => RelayRoute; pathFor: (record: Readonly<AgentRecord>) => PathChoice } {
  const relays = new RelayHub({
    agents: config.agents,
    requestWork: (agent, count) => control.sendOpenWork(agent, count),
    logger,
    ...(options.workWaitMs !== undefined ? { workWaitMs: options.workWaitMs } : {}),
  });
  const modes = new Map(config.agents.map((agent) => [agent.name, agent.mode]));
  const relayOf = (name: string): RelayRoute => {
    const port = relays.portOf(name);
    return { mode: modes.get(name) ?? 'direct', ...(port !== undefined ? { port } : {}) };
  };
  const pathFor = (record: Readonly<AgentRecord>): PathChoice => choosePath(record, relayOf(record.name));
  const connects = new ConnectService({ lookup: (name) => registry.get(name), relayOf, sendPunch: (agent, id, peer) => control.sendPunch(agent, id, peer), allow, logger });
  control.on('side', (side) => {
    if (side.kind === 'connect') return connects.handle(side.request, side.socket as Socket, side.observed);
    const socket = side.socket as Socket;
    if (side.punch !== undefined) connects.agentArrived(side.agent, side.punch, socket, side.observed);
    else relays.addWork(side.agent, { socket, key: side.key });
  });
  return { relays, relayOf, pathFor };
}

/** Reachability checks of every online agent; each result goes to the registry, the log and the agent (with its path). */
function createProber(
  config: RendezvousConfig, registry: Registry, control: ControlServer, pathFor: (record: Readonly<AgentRecord>) => PathChoice, logger: Logger, options: RendezvousOptions,
): ProbeScheduler {
  const reportReachability = (agent: string, target: ProbeTarget, result: ProbeResult): void => {
    const before = registry.get(agent)?.reachability;
    if (!registry.recordReachability(agent, { address: target.address, fingerprint: target.fingerprint }, result)) return;
    const after = registry.get(agent)!.reachability;
    const changed = before?.state !== after.state || before.reason !== after.reason;
    // with many agents most results change nothing: those must not even build a log line
    if (changed || logger.isLevelEnabled('debug')) {
      logger[changed ? 'info' : 'debug']({ component: 'prober', agent, address: formatAddress(target.address), ...after, detail: result.detail },
        `${agent} is ${after.state}${after.reason ? `: ${after.reason}` : ''}`);
    }
    control.sendProbe(agent, result, pathFor(registry.get(agent)!).path);
  };
  return new ProbeScheduler({
    intervalMs: config.rendezvous.probeIntervalMs,
    timeoutMs: config.rendezvous.probeTimeoutMs,
    logger,
    ...(options.probe ? { probe: options.probe } : {}),
    onResult: reportReachability,
  });
}

function probeTarget(record: Readonly<AgentRecord>, sourceIp: string | undefined): ProbeTarget {
  return {
    address: record.publicAddress!,
    fingerprint: record.fingerprint!,
    ...(record.publicHost !== undefined ? { publicHost: record.publicHost } : {}),
    ...(sourceIp !== undefined ? { sourceIp } : {}),
  };
}
