/**
 * The frp-like baseline of the relay benchmark: the least a Node relay can do. It accepts a TCP
 * connection, dials the agent's port, and pipes both ways with stream.pipe; no header, no pool, no
 * limits, no timers. Run as its own process so its CPU time can be read from /proc:
 *
 *   node dist/bench/relay/raw-splice.js <listen port> <target port>    (both on 127.0.0.1; 0 = any)
 *
 * Prints one JSON line {"port": <bound port>} once listening.
 */
import { connect, createServer, type Socket } from 'node:net';

function join(user: Socket, targetPort: number): void {
  const agent = connect({ host: '127.0.0.1', port: targetPort });
  const closeBoth = (): void => {
    user.destroy();
    agent.destroy();
  };
  user.on('error', closeBoth);
  agent.on('error', closeBoth);
  user.pipe(agent);
  agent.pipe(user);
}

const [listenPort, targetPort] = process.argv.slice(2).map(Number);
if (!Number.isInteger(listenPort) || !Number.isInteger(targetPort) || targetPort! <= 0) {
  console.error('usage: raw-splice.js <listen port> <target port>');
  process.exit(2);
}
const server = createServer({ allowHalfOpen: true }, (user) => join(user, targetPort!));
// an orderly exit on SIGTERM, so that `node --cpu-prof` writes its profile
process.once('SIGTERM', () => process.exit(0));
server.listen(listenPort, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as { port: number }).port }));
});
