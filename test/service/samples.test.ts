import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sampleServiceFiles } from '../../src/service/samples.js';

/** The repository's service/ folder (this file runs from dist/test). */
const SERVICE_DIR = fileURLToPath(new URL('../../../service/', import.meta.url));
const HAND_WRITTEN = new Set(['README.md']);

async function filesIn(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(join(dir, prefix), { withFileTypes: true });
  const nested = await Promise.all(entries.map((e) => (e.isDirectory() ? filesIn(dir, join(prefix, e.name)) : [join(prefix, e.name)])));
  return nested.flat();
}

test('service/ holds exactly what the renderers produce for the sample configs (UPDATE_GOLDEN=1 rewrites it)', async () => {
  const expected = sampleServiceFiles();
  if (process.env.UPDATE_GOLDEN === '1') {
    for (const [name, content] of Object.entries(expected)) {
      await mkdir(dirname(join(SERVICE_DIR, name)), { recursive: true });
      await writeFile(join(SERVICE_DIR, name), content);
    }
  }
  const present = (await filesIn(SERVICE_DIR)).filter((name) => !HAND_WRITTEN.has(name)).sort();
  assert.deepEqual(present, Object.keys(expected).sort(), 'service/ has stale or missing files: regenerate with UPDATE_GOLDEN=1');
  for (const [name, content] of Object.entries(expected)) {
    assert.equal(await readFile(join(SERVICE_DIR, name), 'utf8'), content, `service/${name} is out of date: regenerate with UPDATE_GOLDEN=1`);
  }
});
