import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- log lines are free-form JSON
export type LogLine = Record<string, any>;

/** A pino logger whose JSON lines land in `lines`, so a test can assert on what a user would read. */
export function captureLogs(level = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return { logger: pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, sink), lines };
}
