import { spawn } from 'node:child_process';
import type { Logger } from './logger.js';

/**
 * Tells systemd the service is ready (Type=notify), for the agent and the rendezvous alike. Node cannot
 * send on a unix datagram socket, so this runs `systemd-notify --ready`; the unit needs NotifyAccess=all
 * for systemd to accept it from a child. Without NOTIFY_SOCKET (not under systemd, or Type=exec) it does
 * nothing; without the binary it logs.
 *
 * systemd-notify (since systemd 246) sends two datagrams: "READY=1", then "BARRIER=1" carrying the write
 * end of a pipe (SCM_RIGHTS), and waits until every copy of that fd is closed. PID 1 closes it once it has
 * handled READY=1, which is the point: the sender is still alive while systemd looks up its cgroup, so the
 * message is credited to this unit. We keep that wait (no --no-block); it runs in the child, never blocks
 * the daemon. Any receiver that reads the barrier datagram closes the fd too: recv() without room for
 * ancillary data makes the kernel drop (close) the passed fd, and recvmsg() hands it over to be closed. A
 * receiver that keeps the fd open makes systemd-notify give up after 5 s: it then sends "ERRNO=110" and
 * exits 1 ("Failed to invoke barrier: Connection timed out"), which is logged below. Nothing bound at
 * NOTIFY_SOCKET: it exits 1 at once.
 */
export function notifyReady(logger: Logger, env: NodeJS.ProcessEnv = process.env): void {
  if (!env.NOTIFY_SOCKET) return;
  const child = spawn('systemd-notify', ['--ready'], { env, stdio: 'ignore' });
  child.on('error', (error) => logger.debug({ err: error.message }, 'systemd-notify unavailable; readiness not reported'));
  child.on('exit', (code) => {
    if (code !== 0 && code !== null) logger.warn({ code }, 'systemd-notify --ready failed');
  });
}
