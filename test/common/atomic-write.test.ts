import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/common/atomic-write.js';

test('writeFileAtomic replaces the file whole, with the mode asked, and leaves no temp file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hp-atomic-'));
  const file = join(dir, 'state.json');
  await writeFile(file, 'old');
  await writeFileAtomic(file, '{"new":true}', 0o600);
  assert.equal(await readFile(file, 'utf8'), '{"new":true}');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.deepEqual(await readdir(dir), ['state.json']);
  await assert.rejects(writeFileAtomic(join(dir, 'missing', 'x.json'), 'x'));
  assert.deepEqual(await readdir(dir), ['state.json']);
});
