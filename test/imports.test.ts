import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * Imports run one way, so that a change in a program never reaches back into what the programs share:
 * `common` imports nothing of the project, `config` no program and no `admin`, `admin` and `protocol`
 * no `config` or `cli` (and `protocol` no `admin`), `service` no `cli`; the agent and the rendezvous never
 * import each other (they meet in `protocol`), and `tunnel` (homeport connect, hole punching) neither.
 * `nat` (STUN) imports only `common`: the rendezvous serves it, the agent and the CLI ask with it.
 */
const FORBIDDEN: Record<string, string[]> = {
  common: ['admin', 'agent', 'cli', 'config', 'demo', 'nat', 'protocol', 'rendezvous', 'service', 'tls'],
  config: ['admin', 'agent', 'cli', 'demo', 'nat', 'rendezvous', 'service'],
  admin: ['cli', 'config', 'nat'],
  protocol: ['admin', 'cli', 'config', 'nat'],
  nat: ['admin', 'agent', 'cli', 'config', 'demo', 'protocol', 'rendezvous', 'service', 'tls', 'tunnel'],
  service: ['cli'],
  agent: ['cli', 'rendezvous'],
  rendezvous: ['agent', 'cli'],
  tunnel: ['agent', 'cli', 'rendezvous'],
};

const SRC = fileURLToPath(new URL('../../src', import.meta.url));

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The top-level folder of src/ each relative import or re-export of `file` lands in. */
function importedFolders(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:\bfrom|\bimport\s*\(?)\s*'(\.[^']+)'/g)].map((match) => match[1]!);
  return specifiers.map((specifier) => relative(SRC, resolve(dirname(file), specifier)).split(/[\\/]/)[0]!);
}

test('the source folders import one way only', () => {
  const files = sourceFiles(SRC);
  assert.ok(files.length > 50, `found the sources in ${SRC}`);
  const wrong: string[] = [];
  for (const file of files) {
    const folder = relative(SRC, file).split(/[\\/]/)[0]!;
    for (const target of importedFolders(file)) {
      if (FORBIDDEN[folder]?.includes(target)) wrong.push(`${relative(SRC, file)} imports ${target}`);
    }
  }
  assert.deepEqual(wrong, []);
});
