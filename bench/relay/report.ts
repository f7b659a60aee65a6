/** The relay benchmark's rows, its two targets (issue 9) and the printed table. Pure. */
import type { CpuPerGiB, PathFigures } from './measure.js';

export const ROW_NAMES = ['direct', 'relay', 'raw-splice'] as const;
export type RowName = (typeof ROW_NAMES)[number];

export interface Row extends Partial<PathFigures> {
  /** What carries the bytes between curl and the agent. */
  path: string;
  error?: string;
}

export type Rows = Partial<Record<RowName, Row>>;

export const TARGETS = {
  /** relay single-stream throughput / direct single-stream throughput */
  singleStreamRatio: 0.7,
  /** CPU seconds of the rendezvous per GiB relayed, single stream */
  relayCpuPerGiB: 0.5,
} as const;

export interface TargetOutcome {
  text: string;
  measured?: number;
  status: 'met' | 'MISSED' | 'not measured';
}

export function evaluateTargets(rows: Rows): TargetOutcome[] {
  const relay = rows.relay?.single;
  const direct = rows.direct?.single;
  const ratio = relay && direct && direct.medianMBps > 0 ? relay.medianMBps / direct.medianMBps : undefined;
  const cpu = relay?.relayCpu?.total;
  const outcome = (text: string, measured: number | undefined, met: (value: number) => boolean): TargetOutcome =>
    measured === undefined ? { text, status: 'not measured' } : { text, measured, status: met(measured) ? 'met' : 'MISSED' };
  return [
    outcome(`relay single stream >= ${TARGETS.singleStreamRatio}x direct`, ratio, (value) => value >= TARGETS.singleStreamRatio),
    outcome(`relay CPU <= ${TARGETS.relayCpuPerGiB} s per GiB`, cpu, (value) => value <= TARGETS.relayCpuPerGiB),
  ];
}

const fixed = (value: number | undefined, digits: number): string => (value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits));
const ratioTo = (value: number | undefined, base: number | undefined): string =>
  value === undefined || base === undefined || base <= 0 ? '-' : `${(value / base).toFixed(2)}x`;
const cpuCell = (cpu: CpuPerGiB | undefined): string => (cpu ? `${cpu.total.toFixed(2)} (${cpu.user.toFixed(2)}+${cpu.system.toFixed(2)})` : '-');

/** Right-aligned figures, left-aligned names; one space-padded line per row. */
function layout(lines: string[][]): string {
  const widths = lines[0]!.map((_, column) => Math.max(...lines.map((line) => line[column]!.length)));
  return lines
    .map((line) => line.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('   ').trimEnd())
    .join('\n');
}

export function formatRows(rows: Rows): string {
  const direct = rows.direct;
  const header = ['', '1 stream MB/s', 'vs direct', `${rows.relay?.parallel?.streams ?? 20} streams MB/s`, 'vs direct', 'relaying CPU s/GiB (usr+sys)', 'agent CPU s/GiB'];
  const lines = ROW_NAMES.flatMap((name) => {
    const row = rows[name];
    if (!row) return [];
    if (row.error) return [[name, `FAILED: ${row.error.split('\n')[0]}`, '', '', '', '', '']];
    return [[
      name,
      fixed(row.single?.medianMBps, 0),
      ratioTo(row.single?.medianMBps, direct?.single?.medianMBps),
      fixed(row.parallel?.mbps, 0),
      ratioTo(row.parallel?.mbps, direct?.parallel?.mbps),
      cpuCell(row.single?.relayCpu),
      fixed(row.single?.agentCpu.total, 2),
    ]];
  });
  return layout([header, ...lines]);
}

export function formatTargets(outcomes: TargetOutcome[]): string {
  return layout([
    ['target', 'measured', ''],
    ...outcomes.map((outcome) => [outcome.text, fixed(outcome.measured, 2), outcome.status]),
  ]);
}
