import { loadRendezvousConfig } from '../config/rendezvous.js';
import { startRendezvous } from '../rendezvous/rendezvous.js';
import { daemonCommand } from './daemon.js';

export const rendezvousCommand = daemonCommand({
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
  load: loadRendezvousConfig,
  start: startRendezvous,
});
