/** Pure: the rendezvous benchmark's targets, verdicts and the table it prints. */
import type { LoadResult } from './load.js';
import type { RecoveryResult } from './recovery.js';

export type Verdict = 'met' | 'MISSED' | 'not measured';

export interface TargetOutcome {
  name: string;
  target: string;
  measured?: string;
  status: Verdict;
  /** Why it was not measured (skipped, failed). */
  note?: string;
}

export interface Measured {
  recovery?: RecoveryResult | { skipped: string } | { error: string };
  load?: LoadResult | { skipped: string } | { error: string };
}

export const TARGETS = {
  recoveryMaxMs: 6_000,
  cpuPercent: 10,
  rssMB: 200,
} as const;

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

function unmeasured(part: object | undefined): string | undefined {
  if (part === undefined) return 'not run';
  if ('skipped' in part) return `skipped: ${part.skipped}`;
  if ('error' in part) return `failed: ${part.error}`;
  return undefined;
}

function outcome(name: string, target: string, measured: number | undefined, limit: number, format: (value: number) => string, note?: string): TargetOutcome {
  if (measured === undefined || !Number.isFinite(measured)) return { name, target, status: 'not measured', ...(note ? { note } : {}) };
  return { name, target, measured: format(measured), status: measured <= limit ? 'met' : 'MISSED' };
}

/** Every target with its verdict; a part that did not run or failed is "not measured", with the reason. */
export function evaluateTargets(measured: Measured): TargetOutcome[] {
  const recoveryNote = unmeasured(measured.recovery);
  const loadNote = unmeasured(measured.load);
  const recovery = recoveryNote === undefined ? (measured.recovery as RecoveryResult) : undefined;
  const load = loadNote === undefined ? (measured.load as LoadResult) : undefined;
  const allRecovered = recovery !== undefined && recovery.runs.every((run) => run.recoveredMs !== undefined);
  const allRegistered = load !== undefined && load.registered === load.agents;
  return [
    outcome('recovery after a mapping change (max of 5, 5 s heartbeat)', `<= ${seconds(TARGETS.recoveryMaxMs)}`,
      allRecovered ? recovery.maxMs : undefined, TARGETS.recoveryMaxMs, seconds, recoveryNote ?? (allRecovered ? undefined : 'a run did not recover')),
    outcome(`rendezvous CPU, ${load?.agents ?? 10_000} agents`, `< ${TARGETS.cpuPercent}% of a core`,
      allRegistered ? load.cpuPercent : undefined, TARGETS.cpuPercent, (value) => `${value.toFixed(1)}%`, loadNote ?? 'not every agent registered'),
    outcome(`rendezvous RSS, ${load?.agents ?? 10_000} agents`, `< ${TARGETS.rssMB} MB`,
      allRegistered ? load.rssMaxMB : undefined, TARGETS.rssMB, (value) => `${value.toFixed(0)} MB`, loadNote ?? 'not every agent registered'),
  ];
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ')).join('\n');
}

export function formatRecovery(result: Measured['recovery']): string {
  const note = unmeasured(result);
  if (note !== undefined) return `recovery: ${note}`;
  const recovery = result as RecoveryResult;
  const rows = [['run', 'change', 'recovered in', 'new address', 'download']];
  recovery.runs.forEach((run, index) => rows.push([
    String(index + 1), run.change, run.recoveredMs === undefined ? 'NO' : seconds(run.recoveredMs), run.location ?? '-', run.downloadOk ? 'sha256 ok' : 'FAILED',
  ]));
  return `${table(rows)}\nmedian ${seconds(recovery.medianMs)}, max ${seconds(recovery.maxMs)}`;
}

export function formatLoad(result: Measured['load']): string {
  const note = unmeasured(result);
  if (note !== undefined) return `load: ${note}`;
  const load = result as LoadResult;
  const rows = [
    ['figure', 'value'],
    ['agents registered', `${load.registered} of ${load.agents}${load.failedToRegister ? ` (${load.failedToRegister} failed)` : ''}`],
    ['registrations/s (ramp average)', `${load.registrationsPerSec.toFixed(0)} (${load.rampSeconds.toFixed(1)} s; peak ${load.peakRegistrationsPerSec}/s)`],
    ['rendezvous CPU (steady window)', `${load.cpuPercent.toFixed(1)}% of a core over ${load.windowSeconds.toFixed(0)} s (event loop ${load.mainThreadCpuPercent.toFixed(1)}%)`],
    ['rendezvous RSS', `${load.rssMB.toFixed(0)} MB (max ${load.rssMaxMB.toFixed(0)}, after ramp ${load.rssAfterRampMB.toFixed(0)})`],
    ['pings/s, pongs/s', `${load.pingsPerSec.toFixed(0)}, ${load.pongsPerSec.toFixed(0)}`],
    ['reachability checks/s (full TLS)', `${load.checksPerSec.toFixed(0)} (${load.fullHandshakesPerSec.toFixed(1)})`],
    ['check results sent/s (whole run)', `${load.probeResultsPerSec.toFixed(1)} (${load.resultsReachable} reachable, ${load.resultsUnreachable} not)`],
    ['sessions lost', String(load.disconnected)],
    ['load generators CPU', `${load.loadGeneratorCpuPercent.toFixed(0)}% of a core`],
    ['rendezvous warnings logged', String(load.rendezvousWarnings)],
  ];
  return table(rows);
}

export function formatTargets(outcomes: TargetOutcome[]): string {
  const rows = [['target', '', 'measured', 'verdict']];
  for (const item of outcomes) rows.push([item.name, item.target, item.measured ?? '-', item.status === 'not measured' ? `not measured (${item.note ?? ''})` : item.status]);
  return table(rows);
}
