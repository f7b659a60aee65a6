import { spawnSync } from 'node:child_process';

/**
 * Skip reason for a test that needs an external program, or undefined when it is there. Under CI=true
 * .ci/run installs every such program, so a missing one fails the test instead of skipping it.
 */
export function missingTool(name: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
  if (found) return undefined;
  if (process.env.CI === 'true') throw new Error(`${name} is not installed, but CI must run this test: .ci/run installs it`);
  return `${name} is not installed (apt-get install it, or run .ci/run)`;
}
