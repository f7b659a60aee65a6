import type { Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import type { AgentConfig, AgentRendezvousConfig } from '../config/agent-types.js';
import { formatAddress, formatHostPort } from '../common/address.js';
import { runAddressHook } from './address-hook.js';
import { watchAddress } from './address-watch.js';
import { ControlClient, type ControlClientOptions } from './control-client.js';
import { RendezvousHttp01Responder } from './acme-responder.js';
import type { Http01Responder } from '../tls/acme/http01.js';
import type { PortHolder } from './lan-listener.js';
import { NatWatch } from './nat-watch.js';
import { PublicAddressTracker } from './public-address.js';
import { PunchedPort } from './punch.js';
import { createPunchResponder } from './punch-responder.js';
import { WorkConnections } from './work-connections.js';
import { scheduleReregister } from './schedule.js';
import type { AgentStatus } from './status.js';

const CONNECT_TIMEOUT_MS = 10_000;

export interface RendezvousLink extends PortHolder {
  readonly tracker: PublicAddressTracker;
  readonly connected: boolean;
  /** Status fields this link knows. */
  status(): Pick<AgentStatus, 'rendezvous' | 'connected' | 'publicAddress' | 'since' | 'reachable' | 'reachableReason' | 'checkedAt' | 'path' | 'lastHeartbeat' | 'registeredAt' | 'addressChanges' | 'nat'>;
  reregister(reason: string): void;
  /** The rendezvous's address as the current control connection reached it: its reachability checks come from there. */
  rendezvousAddress(): string | undefined;
  /** HTTP-01 answered by the rendezvous on its acmeHttp port, for the names it lists for this agent. */
  readonly http01: Http01Responder;
}

export interface RendezvousLinkOptions {
  config: AgentConfig & { rendezvous: AgentRendezvousConfig };
  onConnection: (socket: Socket) => void;
  /** A user's connection that came another way (relayed, punched), with its true client address. */
  onOtherPath: (socket: Socket, client: string) => void;
  /** The whitelist, asked before dialling a `homeport connect` client. */
  allows: (ip: string) => boolean;
  fingerprint: () => string;
  /** Carries out the admin orders the rendezvous forwards. */
  admin: ControlClientOptions['admin'];
  /** Something changed that the status file should show; `urgent` for address changes. */
  onStatusChange: (urgent: boolean) => void;
  logger: Logger;
}

/**
 * The punched port and everything around it: the control connection, the public address it reveals,
 * the DDNS hook on a change, the daily re-register job and the watch that re-registers sooner when the
 * network changes.
 */
export async function startRendezvousLink({ config, onConnection, onOtherPath, allows, fingerprint, admin, onStatusChange, logger }: RendezvousLinkOptions): Promise<RendezvousLink> {
  const rv = config.rendezvous;
  const log = logger.child({ component: 'rendezvous' });
  const port = new PunchedPort({
    listen: config.agent.listen,
    server: rv.server,
    onConnection,
    onListenerError: (error) => log.error({ err: error.message }, 'listener error on the punched port'),
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
  });
  const tracker = new PublicAddressTracker();
  const control = new ControlClient({ name: config.agent.name, config: rv, port, fingerprint, admin, logger: log });
  const side = { server: rv.server, agent: config.agent.name, secret: rv.secret, timeoutMs: CONNECT_TIMEOUT_MS };
  const work = new WorkConnections({ ...side, onRelayed: onOtherPath, logger: log });
  control.on('openWork', (count) => work.add(count));
  control.on('punch', createPunchResponder({ ...side, allows, onPunched: onOtherPath, logger: log }));
  const http01 = new RendezvousHttp01Responder(control);
  control.on('acmeChallengeResult', (result) => http01.receive(result));

  let registeredAt: Date | undefined;
  const nat = new NatWatch({ logger: log, onResult: () => onStatusChange(true) });
  control.on('registered', (observed, stunPort) => {
    http01.connected();
    registeredAt = new Date();
    log.info({ public: formatAddress(observed), localPort: port.port, stunPort }, 'registered with the rendezvous');
    tracker.observe(observed);
    onStatusChange(true);
    const rendezvousIp = control.rendezvousAddress;
    if (stunPort !== undefined && rendezvousIp !== undefined) nat.checkOnce({ ip: rendezvousIp, port: stunPort });
  });
  control.on('observed', (observed) => {
    tracker.observe(observed);
    onStatusChange(false);
  });
  control.on('probe', (result) => {
    const previous = tracker.reachability;
    const changed = previous?.reachable !== result.reachable || previous?.reason !== result.reason || previous?.path !== result.path;
    tracker.recordProbe(result);
    if (changed) log.info({ reachable: result.reachable, reason: result.reason, path: result.path }, 'reachability check');
    onStatusChange(changed);
  });
  control.on('disconnected', (reason) => {
    http01.disconnected(reason);
    onStatusChange(true);
  });
  tracker.on('change', (previous, current) => {
    if (previous) log.warn({ from: formatAddress(previous), to: formatAddress(current) }, 'public address changed');
    // the first address after a start goes to the hook too: the DDNS record may be stale from before
    if (rv.onAddressChange) void runAddressHook(rv.onAddressChange, current, log);
    onStatusChange(true);
  });

  await control.start();
  const schedule = scheduleReregister({
    cronTime: rv.reregister,
    timeZone: rv.timezone,
    maxJitterMs: rv.reregisterDelayMs,
    run: () => control.reregister('daily schedule'),
    onMissedRun: (plannedAt) => log.warn({ planned: plannedAt.toISOString() }, 'the daily re-register did not run on time (the machine slept?); running it now'),
  });
  log.info({ next: schedule.nextRun().toISOString() }, 'daily re-register scheduled');
  const stopWatch = watchAddress({
    reregister: (reason) => control.reregister(reason),
    connected: () => control.connected,
    lastHeartbeat: () => tracker.lastHeartbeat,
    heartbeatMs: rv.heartbeatMs,
  });

  return {
    tracker,
    get port() { return port.port; },
    get connected() { return control.connected; },
    status: () => ({
      rendezvous: formatHostPort(rv.server),
      connected: control.connected,
      ...(tracker.current ? { publicAddress: tracker.current, since: tracker.since!.toISOString() } : {}),
      ...(tracker.reachability
        ? {
          reachable: tracker.reachability.reachable,
          checkedAt: tracker.reachability.checkedAt,
          ...(tracker.reachability.reason ? { reachableReason: tracker.reachability.reason } : {}),
          ...(tracker.reachability.path ? { path: tracker.reachability.path } : {}),
        }
        : {}),
      ...(tracker.lastHeartbeat ? { lastHeartbeat: tracker.lastHeartbeat.toISOString() } : {}),
      ...(registeredAt ? { registeredAt: registeredAt.toISOString() } : {}),
      ...(nat.status() ? { nat: nat.status() } : {}),
      addressChanges: tracker.changes,
    }),
    reregister: (reason) => control.reregister(reason),
    rendezvousAddress: () => control.rendezvousAddress,
    http01,
    async close() {
      schedule.stop();
      stopWatch();
      work.close();
      await control.close();
      await port.close();
    },
  };
}
