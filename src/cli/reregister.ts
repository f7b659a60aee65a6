import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { readStatusFile } from '../agent/status.js';
import { formatAddress } from '../config/address.js';
import { loadAgentConfig } from '../config/agent.js';
import { type Command, EXIT, parseFlags, requireConfigFlag } from './command.js';

/** The running agent re-registers when it gets this signal (SIGUSR1 is Node's debugger switch). */
export const REREGISTER_SIGNAL = 'SIGUSR2';
const WAIT_MS = 20_000;

export const reregisterCommand: Command = {
  name: 'reregister',
  summary: 'make the running agent reconnect to the rendezvous from its punched port now',
  help: `Usage: homeport reregister --config <agent.toml>

Asks the running agent (by signal ${REREGISTER_SIGNAL}; it never punches from a second process) to drop its
control connection and register again from its punched port: a fresh public address and a fresh
reachability check, as the daily job does after the router's reboot. Waits up to ${WAIT_MS / 1000} s
for the agent to report back and prints its public address.

Options:
  -c, --config <file>   the agent's configuration (its stateDir holds status.json with the agent's pid)
  -h, --help            show this help

Exit codes: 0 re-registered, 1 the agent is not running or did not re-register in time, 2 usage or config error.`,
  async run(argv) {
    const { values } = parseFlags(argv, { config: { type: 'string', short: 'c' } });
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const config = await loadAgentConfig(requireConfigFlag(values.config));
    if (!config.rendezvous) {
      console.error(`homeport reregister: ${config.file} has no [rendezvous] section: the agent does not register anywhere`);
      return EXIT.usage;
    }
    const file = join(config.agent.stateDir, 'status.json');
    const before = await readStatusFile(file);
    if (!before || !signal(before.pid)) {
      console.error(`homeport reregister: no running agent found for ${config.file} (${file} names no live process); start it first`);
      return EXIT.failure;
    }
    const asked = Date.now();
    for (let waited = 0; waited < WAIT_MS; waited += 250) {
      await sleep(250);
      const status = await readStatusFile(file);
      if (status?.connected && status.registeredAt && Date.parse(status.registeredAt) >= asked) {
        console.log(`re-registered: public address ${status.publicAddress ? formatAddress(status.publicAddress) : 'unknown'}`);
        return EXIT.ok;
      }
    }
    console.error(`homeport reregister: the agent (pid ${before.pid}) did not report a new registration within ${WAIT_MS / 1000} s; see its log`);
    return EXIT.failure;
  },
};

function signal(pid: number): boolean {
  try {
    process.kill(pid, REREGISTER_SIGNAL);
    return true;
  } catch {
    return false;
  }
}
