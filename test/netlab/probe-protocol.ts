// What a test asks of a probe child (probe.ts) over the Node IPC channel, and what it answers.

export interface Endpoint {
  host: string;
  port: number;
}

/** A local UDP socket: its port, and its address when bound to one (the wan probe binds its public ones). */
export interface LocalUdp {
  host?: string;
  port: number;
}

export interface Datagram {
  from: Endpoint;
  payload: string;
}

/** A TCP connection that delivered its first line (and stays open under its number), or why not. */
export type TcpOutcome = { reply: string; connection: number } | { failure: string };

export interface ProbeOps {
  /** Bind a UDP socket; a reflecting one answers every datagram with the sender's "ip:port". */
  'udp-bind': { args: { local: LocalUdp; reflect: boolean }; result: null };
  /** Send payload to `to` and wait for a datagram from it: null when none came within timeoutMs. */
  'udp-ask': { args: { local: LocalUdp; to: Endpoint; payload: string; timeoutMs: number }; result: Datagram | null };
  'udp-send': { args: { local: LocalUdp; to: Endpoint; payload: string }; result: null };
  /** The next datagram from anyone: null when none came within timeoutMs. */
  'udp-receive': { args: { local: LocalUdp; timeoutMs: number }; result: Datagram | null };
  /** A TCP server that writes each client's "ip:port\n" and keeps the connection open. */
  'tcp-reflect': { args: { local: Endpoint }; result: null };
  /** Listen on port on every address; answer each connection with greeting + "\n" and close it. */
  'tcp-listen': { args: { port: number; greeting: string }; result: null };
  /** Connect (from localPort, if given) and read the first line. */
  'tcp-request': { args: { to: Endpoint; localPort?: number; timeoutMs: number }; result: TcpOutcome };
  /** Write to an open connection: "open", "closed" or the error code seen within timeoutMs. */
  'tcp-write': { args: { connection: number; timeoutMs: number }; result: string };
}

export type ProbeOp = keyof ProbeOps;
export type ProbeRequest = { [K in ProbeOp]: { id: number; op: K; args: ProbeOps[K]['args'] } }[ProbeOp];
export type ProbeResponse = { id: number; result: unknown } | { id: number; error: string };

/** The first message of a probe: it is ready for requests. */
export const PROBE_READY = { ready: 'probe' } as const;

export function formatEndpoint(endpoint: Endpoint): string {
  return `${endpoint.host}:${endpoint.port}`;
}

export function parseEndpoint(text: string): Endpoint {
  const match = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(text);
  if (!match?.[1] || !match[2]) throw new Error(`'${text}' is no IPv4 ip:port`);
  return { host: match[1], port: Number(match[2]) };
}
