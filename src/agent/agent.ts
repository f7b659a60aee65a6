import { mkdir } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { AdminApi } from '../admin/api.js';
import type { AdminBackend } from '../admin/api-types.js';
import { KeyStore, keyStorePath } from '../admin/key-store.js';
import type { Logger } from '../common/logger.js';
import type { AgentConfig, AgentRendezvousConfig } from '../config/agent-types.js';
import { formatHostPort } from '../common/address.js';
import { ConfigError } from '../common/config-error.js';
import { openCertificateSource, TlsSetupError, type CertificateSource } from '../tls/certificates.js';
import { createSecureContext } from '../tls/server-options.js';
import { createLocalAdminBackend, executeAdminOrder } from './admin-backend.js';
import { startAdminListener, type AdminListener } from './admin-listener.js';
import { createForwarder } from './forwarder.js';
import { createConnectionLimits } from './connection-limits.js';
import { createGate } from './gate.js';
import { createHttpHandlers } from './http-handler.js';
import { describeBindError, listenOnLan, type PortHolder } from './lan-listener.js';
import { Pipeline } from './pipeline.js';
import { startRendezvousLink, type RendezvousLink } from './rendezvous-link.js';
import { lateBoundHttp01 } from './acme-responder.js';
import type { Http01Responder } from '../tls/acme/http01.js';
import { compileRoutes } from './router.js';
import { StatusFile, type AgentStatus } from './status.js';
import { normalizeClientAddress } from '../common/cidr.js';
import { openFileLimit } from '../common/fd-limit.js';
import { Whitelist } from './whitelist/store.js';

export interface RunningAgent {
  /** The port actually held (differs from the config when it asked for port 0). */
  readonly port: number;
  readonly whitelist: Whitelist;
  readonly certificates: CertificateSource;
  /** Present when the config has a [rendezvous] section. */
  readonly link: RendezvousLink | undefined;
  /** The LAN admin API's port; present when the config has an [admin] section. */
  readonly adminPort: number | undefined;
  status(): AgentStatus;
  /** SIGHUP: re-read the whitelist file and the certificate files. */
  reload(): Promise<void>;
  /** Reconnect to the rendezvous from the punched port now (`homeport reregister`). */
  reregister(reason: string): void;
  close(): Promise<void>;
}

/** What the agent trusts from its state folder and config: loaded first, and it refuses to start without them. */
interface AgentState {
  whitelist: Whitelist;
  certificates: CertificateSource;
  /** The LAN admin API's keys; present with an [admin] section. */
  keys: KeyStore | undefined;
}

/** The one chain every path ends in, and what it holds open. */
interface AgentChain {
  pipeline: Pipeline;
  release(): void;
}

/** Starts the agent: whitelist, certificates, routes, then the port (punched, or plain on the LAN). */
export async function startAgent(config: AgentConfig, logger: Logger): Promise<RunningAgent> {
  await mkdir(config.agent.stateDir, { recursive: true, mode: 0o700 });
  // HTTP-01 goes through the rendezvous, whose link starts after the certificate source: bound below
  const http01 = config.rendezvous ? lateBoundHttp01() : undefined;
  const state = await openState(config, logger, http01?.responder);
  let link: RendezvousLink | undefined;
  const chain = createChain(config, state, () => link?.rendezvousAddress(), logger);
  let holder: PortHolder;
  let statusFile: StatusFile | undefined;
  const status = (): AgentStatus => ({
    agent: config.agent.name,
    localPort: holder.port,
    connected: false,
    addressChanges: 0,
    ...link?.status(),
    certificate: state.certificates.info(),
    updatedAt: new Date().toISOString(),
    pid: process.pid,
  });
  // the LAN admin listener and the rendezvous's forwarded requests change the whitelist the same way,
  // within this agent's own limits (an agent with only [rendezvous] has the default maxTtl)
  const adminBackend = createLocalAdminBackend({ whitelist: state.whitelist, status, maxTtlMs: config.admin?.maxTtlMs });
  const onConnection = (socket: Socket): void => chain.pipeline.accept(socket, normalizeClientAddress(socket.remoteAddress ?? ''));
  try {
    if (config.rendezvous) {
      holder = link = await startRendezvousLink({
        config: config as AgentConfig & { rendezvous: AgentRendezvousConfig },
        onConnection,
        onOtherPath: (socket, client) => chain.pipeline.accept(socket, client),
        allows: (ip) => state.whitelist.allows(ip),
        fingerprint: () => state.certificates.leafFingerprint256(),
        admin: (order) => executeAdminOrder(adminBackend, order, logger),
        onStatusChange: (urgent) => statusFile?.update(urgent),
        logger,
      });
      http01?.bind(link.http01);
    } else {
      holder = await listenOnLan(config.agent.listen, onConnection, logger);
    }
  } catch (error) {
    chain.release();
    throw new Error(describeBindError(error as NodeJS.ErrnoException, config.file, config.agent.listen));
  }
  const adminListener = await startLanAdmin(config, state, adminBackend, logger).catch(async (error: Error) => {
    await holder.close();
    chain.release();
    throw error;
  });
  statusFile = new StatusFile(join(config.agent.stateDir, 'status.json'), status);
  state.certificates.on('change', () => {
    statusFile?.update(true);
    // the rendezvous checks reachability against the fingerprint registered at connect: register the new one
    link?.reregister('the TLS certificate changed');
  });
  await statusFile.flush();
  logger.info({ listen: formatHostPort({ host: config.agent.listen.host, port: holder.port }) }, 'agent listening');

  return {
    get port() { return holder.port; },
    whitelist: state.whitelist,
    certificates: state.certificates,
    link,
    adminPort: adminListener?.port,
    status,
    async reload() {
      await Promise.all([state.whitelist.reload(), state.certificates.reload()]);
    },
    reregister(reason) {
      link?.reregister(reason);
    },
    async close() {
      const listenersClosed = Promise.all([holder.close(), adminListener?.close()]);
      // a listener's close waits for every open connection, and an idle keep-alive one lasts 65 s: end them
      chain.pipeline.close();
      await listenersClosed;
      await statusFile?.close();
      chain.release();
    },
  };
}

/**
 * The whitelist, the certificates and the admin keys; whatever opened is closed again when a later one
 * fails. `http01`: where HTTP-01 challenges go, when the agent has a rendezvous.
 */
async function openState(config: AgentConfig, logger: Logger, http01: Http01Responder | undefined): Promise<AgentState> {
  const whitelist = await Whitelist.open({
    configEntries: config.whitelist.allow,
    file: join(config.agent.stateDir, 'whitelist.json'),
    logger,
  });
  const certificates = await openCertificateSource(config.tls, logger, http01 ? { http01 } : {}).catch((error: unknown) => {
    whitelist.close();
    return error instanceof TlsSetupError ? refuseToStart(error) : Promise.reject(error);
  });
  const keys = config.admin
    ? await KeyStore.open(keyStorePath(config.agent.stateDir), logger).catch((error: Error) => {
      whitelist.close();
      certificates.close();
      return refuseToStart(error);
    })
    : undefined;
  return { whitelist, certificates, keys };
}

/** gate → TLS → router → forwarder, kept in step with certificate renewals and whitelist removals. */
function createChain(config: AgentConfig, state: AgentState, rendezvousAddress: () => string | undefined, logger: Logger): AgentChain {
  const { whitelist, certificates } = state;
  const forwarder = createForwarder({ timeouts: config.timeouts, logger });
  // the rendezvous connects back from the address the agent reached it at, to check reachability
  const admits = (address: string, nowMs?: number): boolean => whitelist.allows(address, nowMs) || address === rendezvousAddress();
  const gate = createGate({ allows: admits }, logger);
  const pipeline = new Pipeline({
    gate,
    limits: createConnectionLimits(config.limits, logger, { fdLimit: openFileLimit() }),
    secureContext: createSecureContext(certificates.current()),
    handlers: createHttpHandlers({ router: compileRoutes(config.routes), forwarder, logger }),
    timeouts: config.timeouts,
    logger,
  });
  certificates.on('change', () => pipeline.setSecureContext(createSecureContext(certificates.current())));
  whitelist.on('change', () => {
    const dropped = pipeline.dropRevoked((address) => admits(address));
    if (dropped > 0) logger.info({ dropped }, 'closed connections from addresses no longer whitelisted');
  });
  return {
    pipeline,
    release() {
      forwarder.close();
      gate.close();
      whitelist.close();
      certificates.close();
    },
  };
}

/** The LAN admin listener, with an [admin] section; a bind failure names the config file. */
async function startLanAdmin(
  config: AgentConfig, state: AgentState, backend: AdminBackend, logger: Logger,
): Promise<AdminListener | undefined> {
  if (!config.admin || !state.keys) return undefined;
  const { listen, allowMeTtlMs, maxTtlMs } = config.admin;
  const api = new AdminApi({ keys: state.keys, logger, allowMeTtlMs, maxTtlMs });
  const listener = await startAdminListener({ listen, certificates: state.certificates, handle: (request) => api.handle(request, backend), logger })
    .catch((error: Error) => Promise.reject(new Error(`${config.file}: ${error.message}`)));
  logger.info({ listen: formatHostPort({ host: listen.host, port: listener.port }) }, 'admin API listening');
  return listener;
}

/** A state or key file the agent cannot trust is a configuration error: exit code 2, no restart loop. */
function refuseToStart(error: Error): never {
  throw new ConfigError([error.message]);
}
