/** The IPC messages between the load benchmark (load.ts) and its load-generator processes (simulated-agents.ts). */

export interface AgentCounters {
  /** Agents whose handshake completed (welcome verified). */
  registered: number;
  /** Agents that never registered (connect, listen or handshake failed). */
  failed: number;
  /** Registered sessions that ended during the run: none should. */
  disconnected: number;
  pings: number;
  /** Sealed pongs that verified. */
  pongs: number;
  /** Sealed probe results that verified, by verdict. */
  probesReachable: number;
  probesUnreachable: number;
  /** Connections the rendezvous's reachability checks made to the agents' listeners... */
  probeConnections: number;
  /** ...and how many of them completed a TLS handshake (the full check; the periodic one stops earlier). */
  probeHandshakes: number;
  /** When each agent registered (epoch ms), since the previous report. */
  registeredAtMs: number[];
}

export type WorkerCommand =
  | {
      type: 'start';
      server: { host: string; port: number };
      agents: { name: string; secret: string; ip: string; port: number }[];
      /** The agents' certificate chain and key (PEM) and the leaf's SHA-256 they register. */
      cert: string;
      key: string;
      fingerprint: string;
      heartbeatMs: number;
      /** Handshakes in flight at most during the ramp. */
      concurrency: number;
    }
  | { type: 'counters' };

export type WorkerReport =
  | { type: 'ready' }
  | { type: 'ramped' }
  | { type: 'counters'; counters: AgentCounters; failures: string[] };
