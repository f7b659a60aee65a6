// The test side of probe.ts: start a probe inside a lab namespace and call it.
import { fileURLToPath } from 'node:url';
import type { Lab, LabChild, LabNode } from './lab.js';
import { PROBE_READY, type ProbeOp, type ProbeOps, type ProbeRequest, type ProbeResponse } from './probe-protocol.js';

const PROBE_SCRIPT = fileURLToPath(new URL('./probe.js', import.meta.url));
const STARTUP_TIMEOUT_MS = 10_000;
/** how much longer than the operation's own timeoutMs an answer may take */
const ANSWER_MARGIN_MS = 5_000;

export class Probe {
  private lastId = 0;

  constructor(readonly child: LabChild) {}

  async call<K extends ProbeOp>(op: K, args: ProbeOps[K]['args']): Promise<ProbeOps[K]['result']> {
    const id = ++this.lastId;
    await this.child.send({ id, op, args } as ProbeRequest);
    const ownTimeoutMs = (args as { timeoutMs?: number }).timeoutMs ?? 0;
    const response = (await this.child.nextMessage(
      (message) => isResponse(message) && message.id === id,
      ownTimeoutMs + ANSWER_MARGIN_MS,
    )) as ProbeResponse;
    if ('error' in response) throw new Error(`probe in ${this.child.node}: ${op} failed: ${response.error}`);
    return response.result as ProbeOps[K]['result'];
  }
}

export async function startProbe(lab: Lab, node: LabNode): Promise<Probe> {
  const child = lab.spawn(node, [process.execPath, PROBE_SCRIPT]);
  await child.nextMessage(isReady, STARTUP_TIMEOUT_MS);
  return new Probe(child);
}

function isResponse(message: unknown): message is ProbeResponse {
  return typeof message === 'object' && message !== null && typeof (message as { id?: unknown }).id === 'number';
}

function isReady(message: unknown): boolean {
  return typeof message === 'object' && message !== null && (message as { ready?: unknown }).ready === PROBE_READY.ready;
}
