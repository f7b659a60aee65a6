import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { notifyReady } from '../common/notify.js';
import { writeFileAtomic } from '../common/atomic-write.js';
import { createLogger, flushLogger, LOG_FILE_MODE, reopenLogFile, type Logger } from '../common/logger.js';
import { ConfigError } from '../common/config-error.js';
import { type Command, EXIT, parseFlags, requireConfigFlag } from './command.js';
import { REREGISTER_SIGNAL } from './reregister.js';

export interface Daemon {
  reload(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Keeps a daemon running until SIGINT/SIGTERM. SIGHUP reopens the log file (when logging to one) and then
 * reloads, so the "reloading" line already lands in the fresh file. A second Ctrl-C while closing exits
 * at once. A failed reload is logged and the daemon keeps its previous state.
 */
export function runUntilSignal(daemon: Daemon, logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    let closing = false;
    const onHangup = (): void => {
      const logFile = reopenLogFile(logger);
      logger.info(logFile === undefined ? {} : { logFile }, 'SIGHUP: reloading');
      daemon.reload().catch((error: Error) => logger.error({ err: error.message }, 'reload failed; keeping the previous state'));
    };
    const onStop = (signal: NodeJS.Signals): void => {
      if (closing) process.exit(130);
      closing = true;
      logger.info({ signal }, 'stopping');
      process.off('SIGHUP', onHangup);
      daemon.close().finally(() => {
        process.off('SIGINT', onStop);
        process.off('SIGTERM', onStop);
        resolve();
      });
    };
    process.on('SIGHUP', onHangup);
    process.on('SIGINT', onStop);
    process.on('SIGTERM', onStop);
  });
}

export interface DaemonSpec<C extends { log: { level: string } }> {
  name: string;
  summary: string;
  /** What the program does, for --help, between the usage line and the options. */
  description: string;
  /** The --config line of --help: which file, where the README explains it. */
  configHelp: string;
  /** What SIGHUP re-reads besides reopening the log file. */
  reloads: string;
  load(file: string): Promise<C>;
  start(config: C, logger: Logger): Promise<Daemon & { certificates: { describe(): string[] } }>;
}

function daemonHelp(spec: DaemonSpec<{ log: { level: string } }>): string {
  return `Usage: homeport ${spec.name} --config <${spec.name}.toml> [--log-file <file>] [--pid-file <file>]

${spec.description}

Options:
  -c, --config <file>     ${spec.configHelp}
      --log-file <file>   write the log (JSON lines) to this file instead of stdout; the file (mode 0640)
                          and its folder are created when missing
      --pid-file <file>   write the process id to this file once the configuration is valid; removed
                          again on a clean stop
  -h, --help              show this help

Signals: SIGINT/SIGTERM stop. SIGHUP reopens the --log-file at its path (after newsyslog or logrotate
renamed it) and re-reads ${spec.reloads}.
A SIGHUP that arrives while it is still starting is acted on once it runs; one while it stops is ignored.
Under systemd (NOTIFY_SOCKET set, Type=notify with NotifyAccess=all) it reports readiness with
\`systemd-notify --ready\` once it is serving.

Exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage or configuration error.`;
}

/**
 * Signals that others send a daemon by the pid in its pid file or status.json (newsyslog's SIGHUP, `homeport
 * reregister`'s SIGUSR2) and whose default action would end it.
 */
const HELD_SIGNALS: NodeJS.Signals[] = ['SIGHUP', REREGISTER_SIGNAL];

/**
 * Keeps HELD_SIGNALS from ending the process from its first moment until the command returns.
 * While starting they are queued, as the daemon's own handlers are not in place yet: `deliver` replays each
 * once to them. Both are worth keeping rather than dropping: a SIGHUP means the log file was just renamed
 * (dropping it would leave the daemon writing to the rotated file for a day), and `homeport reregister`
 * waits for a registration made after it asked, which the start's own may precede. Afterwards the guard
 * stays as a no-op, so the same signals while stopping (the daemon's SIGHUP handler is gone by then) or
 * while the pid file is removed change nothing.
 */
function holdSignals(): { deliver(): void; release(): void } {
  const pending = new Set<NodeJS.Signals>();
  let starting = true;
  const hold = (signal: NodeJS.Signals): void => {
    if (starting) pending.add(signal);
  };
  for (const signal of HELD_SIGNALS) process.on(signal, hold);
  return {
    deliver() {
      starting = false;
      for (const signal of pending) process.emit(signal, signal);
      pending.clear();
    },
    release() {
      for (const signal of HELD_SIGNALS) process.off(signal, hold);
    },
  };
}

/**
 * A program command (`agent`, `rendezvous`): --config, optional log and pid files, start, print the
 * certificate lines, report readiness to systemd, run until a signal.
 */
export function daemonCommand<C extends { log: { level: string } }>(spec: DaemonSpec<C>): Command {
  const help = daemonHelp(spec);
  return {
    name: spec.name,
    summary: spec.summary,
    help,
    async run(argv) {
      const { values } = parseFlags(argv, {
        config: { type: 'string', short: 'c' },
        'log-file': { type: 'string' },
        'pid-file': { type: 'string' },
      });
      if (values.help) {
        console.log(help);
        return EXIT.ok;
      }
      // from the first moment: a service manager knows the pid before the pid file names it
      const signals = holdSignals();
      try {
        await serve(spec, values, signals);
      } finally {
        signals.release();
      }
      return EXIT.ok;
    },
  };
}

type HeldSignals = ReturnType<typeof holdSignals>;
type DaemonFlags = { config?: string | undefined; 'log-file'?: string | undefined; 'pid-file'?: string | undefined };

/** Loads, opens the log, publishes the pid, starts, and runs until SIGINT/SIGTERM; the pid file goes with it. */
async function serve<C extends { log: { level: string } }>(spec: DaemonSpec<C>, values: DaemonFlags, signals: HeldSignals): Promise<void> {
  const config = await spec.load(requireConfigFlag(values.config));
  // absolute now: the paths must still mean the same files on SIGHUP and at stop
  const logFile = values['log-file'] === undefined ? undefined : resolve(values['log-file']);
  const pidFile = values['pid-file'] === undefined ? undefined : resolve(values['pid-file']);
  if (logFile !== undefined) await prepareFile('--log-file', logFile, createLogFile);
  const logger = createLogger({ level: config.log.level, ...(logFile !== undefined ? { destination: logFile } : {}) });
  // a terminal (or the service manager's own log) still learns where the log went
  if (logFile !== undefined) console.log(`homeport ${spec.name}: logging to ${logFile} (pid ${process.pid})`);
  if (pidFile !== undefined) await prepareFile('--pid-file', pidFile, writePid);
  try {
    const daemon = await spec.start(config, logger);
    for (const line of daemon.certificates.describe()) logger.info(line);
    notifyReady(logger);
    const running = runUntilSignal(daemon, logger);
    signals.deliver();
    await running;
  } finally {
    if (pidFile !== undefined) await removePidFile(pidFile);
    flushLogger(logger);
  }
}

/**
 * Creates a --log-file or --pid-file (and its folder) with `write`, turning a bad path into one clear line
 * at start (exit code 2) rather than a daemon that runs without its log.
 */
async function prepareFile(flag: string, file: string, write: (file: string) => Promise<void>): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true });
    await write(file);
  } catch (error) {
    throw new ConfigError([`${flag} ${file}: cannot be written (${(error as Error).message}); pick a folder the service's user may write to`]);
  }
}

const createLogFile = async (file: string): Promise<void> => (await open(file, 'a', LOG_FILE_MODE)).close();

/**
 * Replaced atomically, so a reader sees the old pid or the new one. A stale file from before a crash or a
 * power cut is simply overwritten: refusing to start over it would keep the service down after a reboot.
 */
const writePid = (file: string): Promise<void> => writeFileAtomic(file, `${process.pid}\n`, 0o644);

/** Removes the pid file unless another process has written its own pid there since. */
async function removePidFile(file: string): Promise<void> {
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text?.trim() === String(process.pid)) await unlink(file).catch(() => undefined);
}
