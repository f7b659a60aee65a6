#!/usr/bin/env node
import { ConfigError } from '../common/config-error.js';
import { agentCommand } from './agent.js';
import { certCommand } from './cert.js';
import { connectCommand } from './connect.js';
import { type Command, EXIT, UsageError } from './command.js';
import { demoCommand } from './demo.js';
import { installServiceCommand, serviceStatusCommand, uninstallServiceCommand } from './install-service.js';
import { keygenCommand, keysCommand } from './keys.js';
import { natCheckCommand } from './nat-check.js';
import { rendezvousCommand } from './rendezvous.js';
import { reregisterCommand } from './reregister.js';
import { statusCommand } from './status.js';
import { versionCommand } from './version.js';
import { allowMeCommand, whitelistCommand } from './whitelist.js';

const COMMANDS: Command[] = [
  agentCommand, rendezvousCommand, statusCommand, certCommand, reregisterCommand, whitelistCommand, allowMeCommand, keygenCommand, keysCommand, connectCommand, natCheckCommand,
  installServiceCommand, uninstallServiceCommand, serviceStatusCommand,
  demoCommand, versionCommand,
];

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'Usage: homeport <command> [options]',
    '',
    'Reach your home behind carrier-grade NAT through a punched port.',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run "homeport <command> --help" for the options of a command.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version' || name === '-v') return versionCommand.run([]);
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    console.error(`homeport: unknown command "${name}"; run "homeport --help" for the list`);
    return EXIT.usage;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    return report(command, error);
  }
}

function report(command: Command, error: unknown): number {
  if (error instanceof ConfigError) {
    for (const problem of error.problems) console.error(problem);
    return EXIT.usage;
  }
  if (error instanceof UsageError) {
    console.error(`homeport ${command.name}: ${error.message}; see "homeport ${command.name} --help"`);
    return EXIT.usage;
  }
  console.error(`homeport ${command.name}: ${(error as Error).message ?? String(error)}`);
  return EXIT.failure;
}

process.exitCode = await main(process.argv.slice(2));
// A daemon has closed everything it owns by now; a stray handle must not keep a stopped service alive.
setTimeout(() => process.exit(), 2000).unref();
