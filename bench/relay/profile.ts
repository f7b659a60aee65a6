/**
 * --profile: the rendezvous runs under `node --cpu-prof`; this reads the .cpuprofile it writes when it
 * stops and sums self time per function, to say where the relay's CPU goes. Time spent in the kernel
 * (read/write of the sockets) shows in the JS function that made the call, or as "(program)" for reads
 * libuv does between JS calls; "(idle)" is waiting in epoll.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  /** Share of all sampled time, idle included. */
  percent: number;
  ms: number;
}

/** Self time per function ("name file:line"), largest first. */
export function summarizeProfile(profile: CpuProfile, top: number): ProfileEntry[] {
  const label = new Map<number, string>();
  for (const { id, callFrame } of profile.nodes) {
    const where = callFrame.url ? ` ${basename(callFrame.url)}:${callFrame.lineNumber + 1}` : '';
    label.set(id, `${callFrame.functionName || '(anonymous)'}${where}`);
  }
  const selfUs = new Map<string, number>();
  let totalUs = 0;
  profile.samples.forEach((id, index) => {
    const delta = profile.timeDeltas[index] ?? 0;
    const name = label.get(id) ?? '?';
    selfUs.set(name, (selfUs.get(name) ?? 0) + delta);
    totalUs += delta;
  });
  return [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, ms: us / 1000, percent: totalUs > 0 ? (100 * us) / totalUs : 0 }));
}

/** The newest .cpuprofile in `dir`, summarized; undefined when the process wrote none. */
export async function readProfileSummary(dir: string, top: number): Promise<{ file: string; entries: ProfileEntry[] } | undefined> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((name) => name.endsWith('.cpuprofile')).sort();
  const newest = files.at(-1);
  if (!newest) return undefined;
  const file = join(dir, newest);
  return { file, entries: summarizeProfile(JSON.parse(await readFile(file, 'utf8')) as CpuProfile, top) };
}
