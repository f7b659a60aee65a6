import { join } from 'node:path';
import { formatStatus, readStatusFile } from '../agent/status.js';
import { loadAgentConfig } from '../config/agent.js';
import { type Command, EXIT, parseFlags, requireConfigFlag } from './command.js';

export const statusCommand: Command = {
  name: 'status',
  summary: 'show the agent\'s public address, reachability and heartbeats',
  help: `Usage: homeport status --config <agent.toml> [--json]

Prints what the running agent last wrote to stateDir/status.json: name, local port, public address and
since when, reachable yes/no with the reason, last heartbeat, number of address changes.

Options:
  -c, --config <file>   the agent's configuration
  --json                print the status as JSON
  -h, --help            show this help

Exit codes: 0 the agent is running, 1 it is not (or has not written a status yet), 2 usage or config error.`,
  async run(argv) {
    const { values } = parseFlags(argv, { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } });
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const config = await loadAgentConfig(requireConfigFlag(values.config));
    const file = join(config.agent.stateDir, 'status.json');
    const status = await readStatusFile(file);
    if (!status) {
      console.error(`homeport status: ${file} does not exist or is unreadable: the agent has not run with this config yet`);
      return EXIT.failure;
    }
    const running = isRunning(status.pid);
    if (values.json) console.log(JSON.stringify({ ...status, running }, null, 2));
    else console.log(`${formatStatus(status, new Date())}${running ? '' : '\n(the agent is not running: this is its last status)'}`);
    return running ? EXIT.ok : EXIT.failure;
  },
};

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
