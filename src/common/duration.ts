import { err, ok, type Result } from './result.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses a human duration such as "500ms", "5s", "2m", "24h", "7d" or "1h30m" into milliseconds.
 * "0" means "disabled" where a key allows it; the caller decides.
 */
export function parseDuration(text: string): Result<number> {
  const trimmed = text.trim();
  if (trimmed === '0') return ok(0);
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;
  let total = 0;
  let index = 0;
  while (index < trimmed.length) {
    part.lastIndex = index;
    const match = part.exec(trimmed);
    if (!match) return err(`"${text}" is not a duration; write e.g. "500ms", "30s", "5m", "24h" or "1h30m"`);
    total += Number(match[1]) * UNIT_MS[match[2]!]!;
    index = part.lastIndex;
  }
  if (trimmed.length === 0) return err('empty duration; write e.g. "30s"');
  return ok(Math.round(total));
}

/** Formats milliseconds for humans: 90_000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  let rest = Math.round(ms / 1000);
  const out: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      out.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return out.join('');
}

const SPAN_UNITS = [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]] as const;

/** A time span in its two largest units, rounded down to seconds: "7 min 12 s", "23 h 59 min", "0 s". */
export function spanInWords(ms: number): string {
  const rounded = Math.floor(ms / 1000) * 1000;
  const first = SPAN_UNITS.findIndex(([, size]) => rounded >= size);
  if (first < 0) return '0 s';
  const [unit, size] = SPAN_UNITS[first]!;
  const words = `${Math.floor(rounded / size)} ${unit}`;
  const next = SPAN_UNITS[first + 1];
  const remainder = next === undefined ? 0 : Math.floor((rounded % size) / next[1]);
  return remainder > 0 ? `${words} ${remainder} ${next![0]}` : words;
}
