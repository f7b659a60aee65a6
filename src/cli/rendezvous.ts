import { loadRendezvousConfig } from '../config/rendezvous.js';
import { startRendezvous } from '../rendezvous/rendezvous.js';
import { daemonCommand } from './daemon.js';

export const rendezvousCommand = daemonCommand({
  name: 'rendezvous',
  summary: 'run the public server: agents register their punched address, users get redirected to it',
  description: `Runs the rendezvous in the foreground until SIGINT/SIGTERM: the control port where agents register
(rendezvous.control, default 0.0.0.0:7000) and the HTTPS port where /go/<agent>/<path> redirects users
to an agent's public address (rendezvous.http, default 0.0.0.0:8443). The registry of agents is kept in
stateDir/registry.json.
Once both ports are bound it logs a JSON line {"msg":"rendezvous listening","controlPort":…,"httpPort":…}.`,
  configHelp: 'the rendezvous\'s TOML configuration (see README: Rendezvous)',
  reloads: 'the certificate files (tls.mode = "files")',
  load: loadRendezvousConfig,
  start: startRendezvous,
});
