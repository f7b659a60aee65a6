import { startAgent } from '../agent/agent.js';
import { loadAgentConfig } from '../config/agent.js';
import { daemonCommand } from './daemon.js';
import { REREGISTER_SIGNAL } from './reregister.js';

export const agentCommand = daemonCommand({
  name: 'agent',
  summary: 'run the home agent: whitelist gate, TLS and the reverse proxy to LAN services',
  description: `Runs the agent in the foreground until SIGINT/SIGTERM: the whitelist gate, TLS and the reverse
proxy to the LAN services of its [[route]] tables, on its punched port when [rendezvous] is set.
${REREGISTER_SIGNAL} (sent by \`homeport reregister\`) makes it register again from its punched port.`,
  configHelp: 'the agent\'s TOML configuration (see README: Configuration)',
  reloads: 'the whitelist file (stateDir/whitelist.json) and, with tls.mode = "files", the certificate files',
  load: loadAgentConfig,
  async start(config, logger) {
    const agent = await startAgent(config, logger);
    process.on(REREGISTER_SIGNAL, () => agent.reregister(`${REREGISTER_SIGNAL} (homeport reregister)`));
    return agent;
  },
});
