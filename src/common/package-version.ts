import { readFileSync } from 'node:fs';

/** homeport's version from its package.json (two folders above dist/src/<folder>/). */
export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return manifest.version;
}
