import type { Logger } from '../common/logger.js';

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
