import { spawn } from 'node:child_process';
import type { Logger } from '../common/logger.js';

/**
 * Tells systemd the service is ready (Type=notify). Node cannot send on a unix datagram socket, so this
 * runs `systemd-notify --ready`; the unit needs NotifyAccess=all for systemd to accept it from a child.
 * Without NOTIFY_SOCKET (not under systemd, or Type=exec) it does nothing; without the binary it logs.
 */
export function notifyReady(logger: Logger, env: NodeJS.ProcessEnv = process.env): void {
  if (!env.NOTIFY_SOCKET) return;
  const child = spawn('systemd-notify', ['--ready'], { env, stdio: 'ignore' });
  child.on('error', (error) => logger.debug({ err: error.message }, 'systemd-notify unavailable; readiness not reported'));
  child.on('exit', (code) => {
    if (code !== 0 && code !== null) logger.warn({ code }, 'systemd-notify --ready failed');
  });
}
