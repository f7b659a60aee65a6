import { createServer, type Server, type Socket } from 'node:net';
import { connectWithin } from '../common/connect.js';
import type { ListenAddress } from '../common/address.js';
import type { ServerAddress } from '../config/agent-types.js';
import { formatAddress } from '../common/address.js';
import { listenOn } from '../common/listen.js';
import { splice } from '../common/splice.js';
import { requestRoute } from './route-request.js';
import { PUNCH_TIMEOUT_MS, simultaneousOpen } from './tcp-punch.js';

export type ConnectPath = 'direct' | 'punched' | 'relay';

export interface ConnectOptions {
  agent: string;
  /** The rendezvous's control port. */
  rendezvous: ServerAddress;
  listen: ListenAddress;
  /** One line per event, for the terminal. */
  report: (line: string) => void;
  /** After a failed punch, new connections skip punching for this long (default 60 s). */
  punchBackoffMs?: number;
}

export interface RunningConnect {
  readonly port: number;
  /** The path of the last connection, and how many went each way. */
  status(): { lastPath?: ConnectPath; counts: Record<ConnectPath, number> };
  close(): Promise<void>;
}

const ROUTE_TIMEOUT_MS = 8_000;
const DIRECT_TIMEOUT_MS = 3_000;
/** A relayed connection idle this long is closed, as the relay itself would. */
const IDLE_MS = 30 * 60_000;

/**
 * `homeport connect`: a local port whose every connection goes to the agent by the best path there is now,
 * tried in order: direct (the punched port passed the rendezvous's check), a TCP hole punch (simultaneous
 * open, coordinated by the rendezvous), the relay. TLS still ends at the agent: this only carries bytes.
 * The choice is made afresh for every connection, so new ones move back to direct as soon as it works.
 */
export async function startConnect(options: ConnectOptions): Promise<RunningConnect> {
  const counts: Record<ConnectPath, number> = { direct: 0, punched: 0, relay: 0 };
  let lastPath: ConnectPath | undefined;
  let punchBlockedUntil = 0;
  const open = new Set<Socket>();

  const pickPath = async (): Promise<{ socket: Socket; path: ConnectPath; detail: string }> => {
    const { route } = await requestRoute(options.rendezvous, options.agent, false, ROUTE_TIMEOUT_MS);
    if (route.direct) {
      const direct = await dial(route.direct.ip, route.direct.port, DIRECT_TIMEOUT_MS);
      if (direct) return { socket: direct, path: 'direct', detail: formatAddress(route.direct) };
    }
    if (Date.now() >= punchBlockedUntil) {
      const punched = await punch();
      if (punched) return punched;
      punchBlockedUntil = Date.now() + (options.punchBackoffMs ?? 60_000);
    }
    if (route.relayPort !== undefined) {
      const relay = await dial(options.rendezvous.host, route.relayPort, DIRECT_TIMEOUT_MS);
      if (relay) return { socket: relay, path: 'relay', detail: `${options.rendezvous.host}:${route.relayPort}` };
    }
    throw new Error(route.reason ?? 'the rendezvous knows no path to it');
  };

  const punch = async (): Promise<{ socket: Socket; path: ConnectPath; detail: string } | undefined> => {
    const { route, socket: held } = await requestRoute(options.rendezvous, options.agent, true, ROUTE_TIMEOUT_MS);
    try {
      if (!route.peer) return undefined;
      const result = await simultaneousOpen({ localPort: held.localPort!, peer: route.peer, timeoutMs: PUNCH_TIMEOUT_MS });
      if (!result.ok) options.report(`punch to ${formatAddress(route.peer)} failed: ${result.error}`);
      return result.ok ? { socket: result.value, path: 'punched', detail: formatAddress(route.peer) } : undefined;
    } finally {
      held.destroy();
    }
  };

  const accept = async (local: Socket): Promise<void> => {
    local.on('error', () => undefined);
    open.add(local);
    local.once('close', () => open.delete(local));
    let chosen;
    try {
      chosen = await pickPath();
    } catch (error) {
      options.report(`connection from ${local.remotePort}: no path to ${options.agent}: ${(error as Error).message}`);
      return void local.destroy();
    }
    if (local.destroyed) return void chosen.socket.destroy();
    counts[chosen.path]++;
    if (chosen.path !== lastPath) options.report(`path to ${options.agent}: ${chosen.path} (${chosen.detail})${lastPath ? `, was ${lastPath}` : ''}`);
    lastPath = chosen.path;
    open.add(chosen.socket);
    chosen.socket.once('close', () => open.delete(chosen.socket));
    await splice(local, chosen.socket, { idleMs: IDLE_MS });
  };

  const server: Server = createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true }, (socket) => void accept(socket));
  const port = await listenOn(server, options.listen, '--listen');
  return {
    port,
    status: () => ({ ...(lastPath ? { lastPath } : {}), counts: { ...counts } }),
    close: () => new Promise((resolve) => {
      for (const socket of open) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

/** A TCP connection, or undefined when it is refused or times out. */
async function dial(host: string, port: number, timeoutMs: number): Promise<Socket | undefined> {
  const connected = await connectWithin({ host, port, noDelay: true }, timeoutMs);
  return connected.ok ? connected.value : undefined;
}
