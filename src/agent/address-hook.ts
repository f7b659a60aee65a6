import { spawn } from 'node:child_process';
import type { Logger } from '../common/logger.js';
import type { PublicAddress } from '../common/address.js';

const HOOK_TIMEOUT_MS = 60_000;

/**
 * Runs the user's onAddressChange command (e.g. a DDNS update) with the new address in the environment.
 * Runs through /bin/sh so the config can hold arguments; the agent never waits on it and never dies of it.
 */
export function runAddressHook(command: string, address: PublicAddress, logger: Logger): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      env: { ...process.env, HOMEPORT_PUBLIC_IP: address.ip, HOMEPORT_PUBLIC_PORT: String(address.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: HOOK_TIMEOUT_MS,
    });
    let output = '';
    const keep = (chunk: Buffer): void => { output = (output + chunk.toString()).slice(-2000); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (error) => {
      logger.error({ command, err: error.message }, 'onAddressChange command could not start');
      resolve(null);
    });
    child.on('close', (code, signal) => {
      const fields = { command, code, signal, output: output.trim() || undefined };
      if (code === 0) logger.info(fields, 'onAddressChange command done');
      else logger.warn(fields, 'onAddressChange command failed');
      resolve(code);
    });
  });
}
