import { createLogger, flushLogger, type Logger } from '../common/logger.js';
import { type Command, EXIT, parseFlags, requireConfigFlag } from './command.js';

export interface Daemon {
  reload(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Keeps a daemon running until SIGINT/SIGTERM, reloading on SIGHUP. A second Ctrl-C while closing exits
 * at once. A failed reload is logged and the daemon keeps its previous state.
 */
export function runUntilSignal(daemon: Daemon, logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    let closing = false;
    const onHangup = (): void => {
      logger.info('SIGHUP: reloading');
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
  help: string;
  load(file: string): Promise<C>;
  start(config: C, logger: Logger): Promise<Daemon & { certificates: { describe(): string[] } }>;
}

/** A program command (`agent`, `rendezvous`): --config, start, print the certificate lines, run until a signal. */
export function daemonCommand<C extends { log: { level: string } }>(spec: DaemonSpec<C>): Command {
  return {
    name: spec.name,
    summary: spec.summary,
    help: spec.help,
    async run(argv) {
      const { values } = parseFlags(argv, { config: { type: 'string', short: 'c' } });
      if (values.help) {
        console.log(spec.help);
        return EXIT.ok;
      }
      const config = await spec.load(requireConfigFlag(values.config));
      const logger = createLogger({ level: config.log.level });
      const daemon = await spec.start(config, logger);
      for (const line of daemon.certificates.describe()) logger.info(line);
      await runUntilSignal(daemon, logger);
      flushLogger(logger);
      return EXIT.ok;
    },
  };
}
