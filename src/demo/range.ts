/** A satisfiable byte range, inclusive at both ends as in Content-Range. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Reads a Range header for a resource of `size` bytes (RFC 9110 §14.1.2).
 * - undefined: no usable range, serve the whole resource (absent, not "bytes", several ranges)
 * - "unsatisfiable": answer 416 with `Content-Range: bytes *\/size`
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const [, first, last] = match as unknown as [string, string, string];
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  if (start >= size) return 'unsatisfiable';
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (end < start) return undefined; // an invalid range is ignored, not refused
  return { start, end };
}
