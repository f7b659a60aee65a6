import { readFileSync } from 'node:fs';

/**
 * The process's soft limit on open files (`ulimit -n`, systemd's LimitNOFILE), where the system tells it:
 * Linux's /proc/self/limits. Node raises the soft limit to the hard one at start, so this is what is left
 * to use. undefined: unlimited, or unknown (macOS, the BSDs).
 */
export function openFileLimit(limitsFile = '/proc/self/limits'): number | undefined {
  let text: string;
  try {
    text = readFileSync(limitsFile, 'utf8');
  } catch {
    return undefined;
  }
  return parseOpenFileLimit(text);
}

/** The soft "Max open files" of a /proc/<pid>/limits text. */
export function parseOpenFileLimit(text: string): number | undefined {
  const soft = /^Max open files\s+(\S+)/m.exec(text)?.[1];
  return soft !== undefined && /^\d+$/.test(soft) ? Number(soft) : undefined;
}
