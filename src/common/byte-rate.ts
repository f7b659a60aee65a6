import { err, ok, type Result } from './result.js';

const UNIT_BYTES: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9 };

/**
 * Parses a bandwidth such as "20MB/s", "100Mbit/s", "512kB/s" or "0" (unlimited) into bytes per second.
 * Decimal prefixes, as ISPs and speed tests quote them: 100Mbit/s is 12,500,000 bytes a second.
 */
export function parseByteRate(text: string): Result<number> {
  const trimmed = text.trim();
  if (trimmed === '0') return ok(0);
  const match = /^(\d+(?:\.\d+)?)\s*([kMG]?)(B|bit)\/s$/.exec(trimmed);
  if (!match) return err(`"${text}" is not a rate; write e.g. "20MB/s", "100Mbit/s" or "0" for unlimited`);
  const bytes = (Number(match[1]) * UNIT_BYTES[match[2]!]!) / (match[3] === 'bit' ? 8 : 1);
  if (bytes < 1000) return err(`"${text}" is below 1kB/s, too slow for a TLS handshake; write e.g. "1MB/s", or "0" for unlimited`);
  return ok(Math.round(bytes));
}
