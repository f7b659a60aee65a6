import { createLogger, flushLogger } from '../common/logger.js';
import { loadRendezvousConfig } from '../config/rendezvous.js';
import { startRendezvous } from '../rendezvous/rendezvous.js';
import { type Command, EXIT, parseFlags, requireConfigFlag } from './command.js';
import { runUntilSignal } from './daemon.js';

export const rendezvousCommand: Command = {
  name: 'rendezvous',
  summary: 'run the public server: agents register their punched address, users get redirected to it',
  help: `Usage: homeport rendezvous --config <rendezvous.toml>

Runs the rendezvous in the foreground until SIGINT/SIGTERM: the control port where agents register
(rendezvous.control, default 0.0.0.0:7000) and the HTTPS port where /go/<agent>/<path> redirects users
to an agent's public address (rendezvous.http, default 0.0.0.0:8443). The registry of agents is kept in
stateDir/registry.json. SIGHUP re-reads the certificate files (tls.mode = "files").
Once both ports are bound it logs a JSON line {"msg":"rendezvous listening","controlPort":…,"httpPort":…}.

Options:
  -c, --config <file>   the rendezvous's TOML configuration (see README: Rendezvous)
  -h, --help            show this help

Exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage or configuration error.`,
  async run(argv) {
    const { values } = parseFlags(argv, { config: { type: 'string', short: 'c' } });
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const config = await loadRendezvousConfig(requireConfigFlag(values.config));
    const logger = createLogger({ level: config.log.level });
    const rendezvous = await startRendezvous(config, logger);
    for (const line of rendezvous.certificates.describe()) logger.info(line);
    await runUntilSignal(rendezvous, logger);
    flushLogger(logger);
    return EXIT.ok;
  },
};
