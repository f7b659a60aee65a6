import { startAgent } from '../agent/agent.js';
import { notifyReady } from '../agent/notify.js';
import { loadAgentConfig } from '../config/agent.js';
import { daemonCommand } from './daemon.js';
import { REREGISTER_SIGNAL } from './reregister.js';

export const agentCommand = daemonCommand({
  name: 'agent',
  summary: 'run the home agent: whitelist gate, TLS and the reverse proxy to LAN services',
  help: `Usage: homeport agent --config <agent.toml>

Runs the agent in the foreground until SIGINT/SIGTERM. SIGHUP re-reads the whitelist file
(stateDir/whitelist.json) and, with tls.mode = "files", the certificate files. Under systemd
(NOTIFY_SOCKET set) it reports readiness with \`systemd-notify --ready\` once it is serving.

Options:
  -c, --config <file>   the agent's TOML configuration (see README: Configuration)
  -h, --help            show this help

Exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage or configuration error.`,
  load: loadAgentConfig,
  async start(config, logger) {
    const agent = await startAgent(config, logger);
    process.on(REREGISTER_SIGNAL, () => agent.reregister(`${REREGISTER_SIGNAL} (homeport reregister)`));
    notifyReady(logger);
    return agent;
  },
});
