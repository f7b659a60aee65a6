/** Results of the proxy benchmark: the targets from issue 2, the printed table and the JSON file. Pure. */
import { PROXY_NAMES } from './servers.js';

export const TARGET_NAMES = ['direct', ...PROXY_NAMES] as const;
export type TargetName = (typeof TARGET_NAMES)[number];
export type Mode = 'full' | 'quick';

/** One row of the table. A figure is absent when it does not apply (direct has no proxy) or failed. */
export interface TargetResult {
  measuredAt: string;
  mode: Mode;
  setup: string;
  throughputMBps?: number;
  throughputRunsMBps?: number[];
  requestsPerSec?: number;
  p50Ms?: number;
  p99Ms?: number;
  /** Socket errors and non-2xx/3xx answers during the wrk run: a proxy failing fast must not look fast. */
  wrkErrors?: number;
  cpuSecondsPerGiB?: number;
  rssIdleMB?: number;
  rssStreamsMB?: number;
  streamsOpen?: number;
  error?: string;
}

export type Results = Partial<Record<TargetName, TargetResult>>;
type Figure = 'throughputMBps' | 'requestsPerSec' | 'cpuSecondsPerGiB' | 'rssStreamsMB';

interface Goal {
  id: string;
  text: string;
  figure: Figure;
  /** Compare homeport with this proxy's figure; absent: compare with `limit` itself. */
  versus?: TargetName;
  atLeast: boolean;
  limit: number;
}

export const GOALS: Goal[] = [
  { id: 'throughput', text: 'throughput >= 1.0x nginx', figure: 'throughputMBps', versus: 'nginx', atLeast: true, limit: 1.0 },
  { id: 'requests', text: 'requests/s >= 1.0x Caddy', figure: 'requestsPerSec', versus: 'caddy', atLeast: true, limit: 1.0 },
  { id: 'cpu', text: 'CPU per GiB <= 1.3x nginx', figure: 'cpuSecondsPerGiB', versus: 'nginx', atLeast: false, limit: 1.3 },
  { id: 'rss', text: 'RSS with 100 streams <= 100 MB', figure: 'rssStreamsMB', atLeast: false, limit: 100 },
];

export interface GoalOutcome {
  id: string;
  text: string;
  homeport?: number;
  reference?: number;
  /** homeport / reference, or homeport's own figure for an absolute limit. */
  value?: number;
  limit: number;
  status: 'met' | 'MISSED' | 'not measured';
}

export function evaluateGoals(results: Results): GoalOutcome[] {
  return GOALS.map((goal) => {
    const homeport = results.homeport?.[goal.figure];
    const reference = goal.versus === undefined ? 1 : results[goal.versus]?.[goal.figure];
    const outcome: GoalOutcome = { id: goal.id, text: goal.text, limit: goal.limit, status: 'not measured' };
    if (homeport === undefined || reference === undefined || reference <= 0) return { ...outcome, homeport };
    const value = homeport / reference;
    const met = goal.atLeast ? value >= goal.limit : value <= goal.limit;
    return { ...outcome, homeport, reference: goal.versus === undefined ? undefined : reference, value, status: met ? 'met' : 'MISSED' };
  });
}

/** Rows measured now replace those of an earlier run; rows not measured now are carried over with their date. */
export function mergeResults(previous: Results, current: Results): Results {
  const merged: Results = {};
  for (const name of TARGET_NAMES) {
    const row = current[name] ?? previous[name];
    if (row) merged[name] = row;
  }
  return merged;
}

const COLUMNS: { title: string; figure: keyof TargetResult; digits: number }[] = [
  { title: 'MB/s', figure: 'throughputMBps', digits: 0 },
  { title: 'req/s', figure: 'requestsPerSec', digits: 0 },
  { title: 'p99 ms', figure: 'p99Ms', digits: 2 },
  { title: 'CPU s/GiB', figure: 'cpuSecondsPerGiB', digits: 2 },
  { title: 'RSS MB', figure: 'rssStreamsMB', digits: 1 },
];

function rowNote(row: TargetResult, measuredNow: boolean): string {
  const notes: string[] = [];
  if (!measuredNow) notes.push(`from ${row.measuredAt} (${row.mode})`);
  else if (row.mode === 'quick') notes.push('quick');
  if (row.wrkErrors) notes.push(`${row.wrkErrors} wrk errors`);
  if (row.streamsOpen !== undefined) notes.push(`${row.streamsOpen} streams open`);
  if (row.error) notes.push(`FAILED: ${row.error.split('\n')[0]}`);
  return notes.join('; ');
}

function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const textColumn = (column: number) => column === 0 || column === header.length - 1;
  const line = (cells: string[]) =>
    cells.map((cell, column) => (textColumn(column) ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n');
}

export function formatResultsTable(results: Results, measuredNow: ReadonlySet<TargetName>): string {
  const rows = TARGET_NAMES.flatMap((name) => {
    const row = results[name];
    if (!row) return [];
    const cells = COLUMNS.map(({ figure, digits }) => {
      const value = row[figure];
      return typeof value === 'number' ? value.toFixed(digits) : '-';
    });
    return [[name, ...cells, rowNote(row, measuredNow.has(name))]];
  });
  return formatTable(['', ...COLUMNS.map((column) => column.title), ''], rows);
}

export function formatGoals(outcomes: GoalOutcome[]): string {
  const rows = outcomes.map((outcome) => {
    const shown = outcome.value === undefined ? '-' : outcome.reference === undefined ? outcome.value.toFixed(1) : `${outcome.value.toFixed(2)}x`;
    return [outcome.text, shown, outcome.status];
  });
  return formatTable(['homeport target', 'measured', ''], rows);
}
