import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { createLogger } from '../../src/common/logger.js';
import { notifyReady } from '../../src/common/notify.js';
import { waitFor } from '../helpers/wait.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A stand-in for systemd-notify that records its calls, to see that none happens. The real one, with a real
 * notify socket, is exercised in daemon-always-on.test.ts.
 */
async function fakeSystemdNotify(): Promise<{ dir: string; calls: () => Promise<string[]> }> {
  const dir = await mkdtemp(join(tmpdir(), 'hp-notify-'));
  const script = join(dir, 'systemd-notify');
  await writeFile(script, '#!/bin/sh\necho "$* NOTIFY_SOCKET=$NOTIFY_SOCKET" >> "$(dirname "$0")/calls"\n');
  await chmod(script, 0o755);
  const calls = (): Promise<string[]> => readFile(join(dir, 'calls'), 'utf8').then((text) => text.trim().split('\n'), () => []);
  return { dir, calls };
}

test('notifyReady runs systemd-notify --ready only under systemd (NOTIFY_SOCKET set)', async () => {
  const notify = await fakeSystemdNotify();
  const logger = createLogger({ level: 'silent' });
  const PATH = `${notify.dir}${delimiter}${process.env.PATH ?? ''}`;
  notifyReady(logger, { PATH });
  await sleep(300);
  assert.deepEqual(await notify.calls(), [], 'not under systemd: no call');
  notifyReady(logger, { PATH, NOTIFY_SOCKET: '/run/test-notify.sock' });
  await waitFor('the systemd-notify call', async () => (await notify.calls()).length > 0);
  assert.deepEqual(await notify.calls(), ['--ready NOTIFY_SOCKET=/run/test-notify.sock']);
});
