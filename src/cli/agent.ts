import { startAgent } from '../agent/agent.js';
import { createLogger, flushLogger } from '../common/logger.js';
import { loadAgentConfig } from '../config/agent.js';
import { type Command, EXIT, parseFlags, requireConfigFlag } from './command.js';
import { runUntilSignal } from './daemon.js';

export const agentCommand: Command = {
  name: 'agent',
  summary: 'run the home agent: whitelist gate, TLS and the reverse proxy to LAN services',
  help: `Usage: homeport agent --config <agent.toml>

Runs the agent in the foreground until SIGINT/SIGTERM. SIGHUP re-reads the whitelist file
(stateDir/whitelist.json) and, with tls.mode = "files", the certificate files.

Options:
  -c, --config <file>   the agent's TOML configuration (see README: Configuration)
  -h, --help            show this help

Exit codes: 0 stopped cleanly, 1 runtime failure, 2 usage or configuration error.`,
  async run(argv) {
    const { values } = parseFlags(argv, { config: { type: 'string', short: 'c' } });
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const config = await loadAgentConfig(requireConfigFlag(values.config));
    const logger = createLogger({ level: config.log.level });
    const agent = await startAgent(config, logger);
    for (const line of agent.certificates.describe()) logger.info(line);
    await runUntilSignal(agent, logger);
    flushLogger(logger);
    return EXIT.ok;
  },
};
