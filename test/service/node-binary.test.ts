import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseNodeBinary } from '../../src/service/node-binary.js';

/** A fake realpath over a table of links: a path resolves to its entry, or to itself when it is a plain file. */
function fakeRealpath(links: Record<string, string>, files: string[]): (p: string) => string | undefined {
  return (p) => links[p] ?? (files.includes(p) ? p : undefined);
}

const ARM_CELLAR = '/opt/homebrew/Cellar/node/22.3.0/bin/node';
const INTEL_CELLAR = '/usr/local/Cellar/node@20/20.14.0/bin/node';

test('chooseNodeBinary prefers Homebrew\'s stable opt link when it leads to the same node, else explains', () => {
  const cases: { name: string; execPath: string; links: Record<string, string>; files: string[]; path: string; realPath: string; note?: RegExp }[] = [
    {
      name: 'distribution node: its real path',
      execPath: '/usr/bin/node',
      links: { '/usr/bin/node': '/usr/bin/nodejs' },
      files: ['/usr/bin/nodejs'],
      path: '/usr/bin/nodejs',
      realPath: '/usr/bin/nodejs',
    },
    {
      name: 'Apple silicon Homebrew: /opt/homebrew/opt/node',
      execPath: '/opt/homebrew/bin/node',
      links: { '/opt/homebrew/bin/node': ARM_CELLAR, '/opt/homebrew/opt/node/bin/node': ARM_CELLAR },
      files: [ARM_CELLAR],
      path: '/opt/homebrew/opt/node/bin/node',
      realPath: ARM_CELLAR,
    },
    {
      name: 'Intel Homebrew, a versioned formula: /usr/local/opt/node@20',
      execPath: '/usr/local/bin/node',
      links: { '/usr/local/bin/node': INTEL_CELLAR, '/usr/local/opt/node@20/bin/node': INTEL_CELLAR },
      files: [INTEL_CELLAR],
      path: '/usr/local/opt/node@20/bin/node',
      realPath: INTEL_CELLAR,
    },
    {
      name: 'opt link missing: the Cellar path, with why',
      execPath: ARM_CELLAR,
      links: {},
      files: [ARM_CELLAR],
      path: ARM_CELLAR,
      realPath: ARM_CELLAR,
      note: /opt\/node\/bin\/node does not exist, so the service names the Cellar path: run install-service again after upgrading node/,
    },
    {
      name: 'opt link leads to another version: the Cellar path, with why',
      execPath: ARM_CELLAR,
      links: { '/opt/homebrew/opt/node/bin/node': '/opt/homebrew/Cellar/node/23.0.0/bin/node' },
      files: [ARM_CELLAR],
      path: ARM_CELLAR,
      realPath: ARM_CELLAR,
      note: /leads to another node \(\/opt\/homebrew\/Cellar\/node\/23\.0\.0\/bin\/node\)/,
    },
    {
      name: 'an unresolvable execPath is taken as it is',
      execPath: '/opt/node/bin/node',
      links: {},
      files: [],
      path: '/opt/node/bin/node',
      realPath: '/opt/node/bin/node',
    },
  ];
  for (const c of cases) {
    const choice = chooseNodeBinary(c.execPath, fakeRealpath(c.links, c.files));
    assert.equal(choice.path, c.path, c.name);
    assert.equal(choice.realPath, c.realPath, c.name);
    if (c.note) assert.match(choice.note ?? '', c.note, c.name);
    else assert.equal(choice.note, undefined, c.name);
  }
});
