import { AGENT_NAME_PATTERN } from '../protocol/messages.js';
import { parseHostPort, parseServerAddress, withDefaultPort } from '../config/address.js';
import { startConnect } from '../tunnel/connect.js';
import { type Command, EXIT, parseFlags, UsageError } from './command.js';

const DEFAULT_LISTEN = '127.0.0.1:8443';
const DEFAULT_CONTROL_PORT = 7000;

export const connectCommand: Command = {
  name: 'connect',
  summary: 'open a local port that reaches an agent directly, by a TCP hole punch, or through the relay',
  help: `Usage: homeport connect <agent> --rendezvous <host[:port]> [--listen <ip:port>]

Opens a local port (default ${DEFAULT_LISTEN}); every connection to it goes to the agent by the best path
there is now, tried in this order:
  direct    the agent's punched port, when the rendezvous's reachability check passes
  punched   a TCP hole punch: both ends connect to each other at once, coordinated by the rendezvous
            (works between two port-restricted cone NATs; not between two symmetric ones)
  relay     the agent's relay port on the rendezvous
The path is chosen again for every new connection, so they move back to direct as soon as it works; each
change of path is printed. TLS still ends at the agent: open https://localhost:8443 in the browser (the
agent's certificate must name localhost, as the self-signed one does).

Options:
  --rendezvous <host[:port]>  the rendezvous's control port (default port ${DEFAULT_CONTROL_PORT})
  --listen <ip:port>          the local port (default ${DEFAULT_LISTEN}; keep it on loopback)
  -h, --help                  show this help

Runs until Ctrl-C. Exit codes: 0 stopped, 1 failure, 2 usage error.`,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { rendezvous: { type: 'string' }, listen: { type: 'string' } }, true);
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const [agent, ...extra] = positionals;
    if (agent === undefined || extra.length > 0) throw new UsageError('name one agent: homeport connect <agent> --rendezvous <host[:port]>');
    if (!AGENT_NAME_PATTERN.test(agent)) throw new UsageError(`"${agent}" is not an agent name (lower-case letters, digits and dashes)`);
    if (!values.rendezvous) throw new UsageError('--rendezvous <host[:port]> is required');
    const rendezvous = parseServerAddress(withDefaultPort(values.rendezvous, DEFAULT_CONTROL_PORT));
    if (!rendezvous.ok) throw new UsageError(`--rendezvous ${rendezvous.error}`);
    const listen = parseHostPort(values.listen ?? DEFAULT_LISTEN);
    if (!listen.ok) throw new UsageError(`--listen ${listen.error}`);
    const report = (line: string): void => console.log(`${new Date().toISOString()} ${line}`);
    const running = await startConnect({ agent, rendezvous: rendezvous.value, listen: listen.value, report });
    report(`listening on ${listen.value.host}:${running.port} for ${agent} via ${rendezvous.value.host}:${rendezvous.value.port}`);
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    const { counts } = running.status();
    await running.close();
    report(`stopped; connections: ${counts.direct} direct, ${counts.punched} punched, ${counts.relay} relayed`);
    return EXIT.ok;
  },
};
