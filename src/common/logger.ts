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
  /** Human-readable output; defaults to "logging to stdout and stdout is a terminal". */
  pretty?: boolean;
  /** Where JSON lines go: a file descriptor (default stdout, fd 1) or a file path (created with its folder). */
  destination?: number | string;
}

/** A log file the logger creates: the daemon's user writes it, its group (adm, wheel) may read it. */
export const LOG_FILE_MODE = 0o640;

/** The file streams of loggers writing to a path, for reopenLogFile. */
const logFiles = new WeakMap<Logger, { file: string; reopen(): void }>();

export function createLogger(options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? (options.destination === undefined && process.stdout.isTTY === true);
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
  const dest = options.destination ?? 1;
  if (typeof dest === 'number') return pino(base, pino.destination({ dest, sync: false }));
  const stream = pino.destination({ dest, sync: false, mkdir: true, mode: LOG_FILE_MODE });
  // A failed (re)open keeps writing to the previous file; a daemon must not die because its log moved.
  stream.on('error', (error: Error) => process.stderr.write(`homeport: log file ${dest}: ${error.message}\n`));
  const logger = pino(base, stream);
  logFiles.set(logger, { file: dest, reopen: () => stream.reopen() });
  return logger;
}

/**
 * Reopens the logger's file at its path: after newsyslog or logrotate renamed it, new lines go to a fresh
 * file there and the renamed one keeps the old lines. Lines logged right after this call already land in
 * the new file (they wait in the buffer while it opens). Returns the path, or undefined for a logger that
 * writes to stdout (left alone).
 */
export function reopenLogFile(logger: Logger): string | undefined {
  const logFile = logFiles.get(logger);
  logFile?.reopen();
  return logFile?.file;
}

/** Flushes buffered log lines; call before exiting. */
export function flushLogger(logger: Logger): void {
  try {
    logger.flush();
  } catch {
    // an already-closed destination has nothing left to flush
  }
}
