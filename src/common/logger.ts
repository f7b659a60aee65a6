import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Every key that may hold a secret, wherever it sits in a log object. pino replaces the value with
 * "[redacted]" before serialising, so a secret never reaches a log line even when a whole config or
 * request object is logged by mistake.
 */
export const REDACT_PATHS = [
  'secret', '*.secret', '*.*.secret',
  'key', '*.key', '*.*.key',
  'password', '*.password',
  'token', '*.token',
  'authorization', '*.authorization', '*.headers.authorization', '*.headers.cookie',
  'headers["x-api-key"]',
];

export interface LoggerOptions {
  level?: string;
  /** Human-readable output; defaults to "stdout is a terminal". */
  pretty?: boolean;
  /** Where JSON lines go; defaults to stdout (fd 1). */
  destination?: number | string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  const base = {
    level: options.level ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: undefined, // no pid/hostname on every line: the service manager already knows them
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (pretty) {
    return pino(base, pino.transport({ target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } }));
  }
  // Asynchronous writes: a request log line must never block the data path on a slow disk or pipe.
  // Lines written while a write is in flight are batched into the next one, so a busy proxy makes few
  // syscalls and a quiet one still shows each line at once.
  const stream = pino.destination({ dest: options.destination ?? 1, sync: false });
  return pino(base, stream);
}

/** Flushes buffered log lines; call before exiting. */
export function flushLogger(logger: Logger): void {
  try {
    logger.flush();
  } catch {
    // an already-closed destination has nothing left to flush
  }
}
