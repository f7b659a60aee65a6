/**
 * nat-check benchmark (issue 10): how long `homeport nat-check --tcp` takes behind each router type of the
 * NAT lab, against homeport's own STUN server (the rendezvous with [stun] alternate) and against coturn.
 * The target: a typical run under 5 s. Filtering shows as tests that go unanswered, so the NAT types that
 * filter pay the retransmission wait; the figure per type is the median of RUNS runs. Traffic stays inside
 * the lab's namespaces. Writes bench/results/nat-check.json; exits 0 even when the target is missed.
 *
 * Run: `npx tsc -p . && node dist/bench/nat-check.js` (root; about 1 min)
 */
import { writeFileAtomic } from '../src/common/atomic-write.js';
import { join } from 'node:path';
import { startStunRendezvous } from '../test/netlab/homeport.js';
import { labAvailability, ROUTER_TYPES, startLab, type Lab, type RouterType } from '../test/netlab/lab.js';
import { COTURN_PORT, natCheck, startCoturn } from '../test/netlab/stun-peers.js';
import { REPO_ROOT } from './proxy/servers.js';

const TARGET_MS = 5_000;
const RUNS = 3;
const RESULTS_FILE = join(REPO_ROOT, 'bench/results/nat-check.json');

interface Row {
  type: RouterType;
  server: 'homeport' | 'coturn';
  classic: string;
  /** elapsedMs as nat-check reports it, per run */
  runsMs: number[];
  medianMs: number;
}

async function timeRuns(lab: Lab, server: string): Promise<{ classic: string; runsMs: number[] }> {
  const runsMs: number[] = [];
  let classic = '';
  for (let run = 0; run < RUNS; run += 1) {
    const report = await natCheck(lab, server, { tcp: true });
    runsMs.push(report.elapsedMs);
    classic = report.udp.classic;
  }
  return { classic, runsMs };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function measure(lab: Lab): Promise<Row[]> {
  await startCoturn(lab);
  const { address: homeportStun } = await startStunRendezvous(lab, { alternate: true });
  const servers = { homeport: homeportStun, coturn: `${lab.addresses.rendezvous}:${COTURN_PORT}` } as const;
  const rows: Row[] = [];
  for (const type of ROUTER_TYPES) {
    await lab.setNat('home-router', type);
    for (const [name, address] of Object.entries(servers) as Array<[Row['server'], string]>) {
      const { classic, runsMs } = await timeRuns(lab, address);
      rows.push({ type, server: name, classic, runsMs, medianMs: median(runsMs) });
    }
  }
  return rows;
}

function format(rows: Row[]): string {
  const lines = ['router  server    NAT type                 median   runs (ms)'];
  for (const row of rows) {
    lines.push(`${row.type.padEnd(8)}${row.server.padEnd(10)}${row.classic.padEnd(25)}${`${row.medianMs} ms`.padStart(8)}   ${row.runsMs.join(', ')}`);
  }
  const worst = Math.max(...rows.map((row) => row.medianMs));
  lines.push('', `target: a typical run under ${TARGET_MS} ms; slowest median ${worst} ms: ${worst < TARGET_MS ? 'met' : 'MISSED'}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const available = labAvailability();
  if (!available.ok) {
    console.log(`nat-check benchmark skipped: the NAT lab cannot run here (${available.reason})`);
    return;
  }
  const lab = await startLab({ home: 'none', remote: 'prc' });
  try {
    const rows = await measure(lab);
    console.log(format(rows));
    await writeFileAtomic(RESULTS_FILE, `${JSON.stringify({ date: new Date().toISOString(), targetMs: TARGET_MS, runs: RUNS, rows }, null, 2)}\n`, 0o644);
  } finally {
    await lab.down();
  }
}

await main();
