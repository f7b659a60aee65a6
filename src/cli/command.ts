import { parseArgs, type ParseArgsConfig } from 'node:util';

export { EXIT } from '../common/exit-codes.js';

export interface Command {
  name: string;
  summary: string;
  /** Full --help text. */
  help: string;
  run(argv: string[]): Promise<number>;
}

/** A mistake in how the command was called: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * node:util parseArgs with homeport's conventions: --help on every command, unknown flags and missing
 * values reported as UsageError (one line) instead of Node's multi-line TypeError.
 */
export function parseFlags<T extends Options>(argv: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, ''));
  }
}

/** The --config flag, required by every program command. */
export function requireConfigFlag(value: string | undefined): string {
  if (!value) throw new UsageError('--config <file> is required');
  return value;
}
