import assert from 'node:assert/strict';
import { isAbsolute } from 'node:path';
import { test } from 'node:test';
import { parse as parsePlist } from 'plist';
import { renderServiceFiles } from '../src/service/files.js';
import { escapeXml } from '../src/service/launchd.js';
import { sampleDescription } from '../src/service/samples.js';

type Dict = Record<string, unknown>;

function macFiles(program: 'agent' | 'rendezvous'): Map<string, Dict> {
  const files = renderServiceFiles(sampleDescription(program, 'macos'));
  return new Map(files.map((file) => [file.name, parsePlist(file.content) as Dict]));
}

function pathsOf(job: Dict): string[] {
  const args = job.ProgramArguments as string[];
  return [args[0]!, args[1]!, args[args.indexOf('--config') + 1]!, job.WorkingDirectory as string, job.StandardOutPath as string, job.StandardErrorPath as string];
}

test('every plist parses back with a label matching its file name and absolute paths only', () => {
  for (const program of ['agent', 'rendezvous'] as const) {
    for (const [name, job] of macFiles(program)) {
      assert.equal(`${String(job.Label)}.plist`, name);
      assert.equal(job.UserName, 'homeport');
      for (const value of pathsOf(job)) assert.ok(isAbsolute(value) && !value.includes('~') && !value.includes('$'), `${name}: ${value}`);
    }
  }
});

test('the daemon runs at load, restarts after a crash only, and throttles restarts with an integer', () => {
  const files = renderServiceFiles(sampleDescription('agent', 'macos'));
  const daemon = parsePlist(files[0]!.content) as Dict;
  assert.equal(daemon.Label, 'org.homeport.agent');
  assert.deepEqual(daemon.ProgramArguments, [
    '/usr/local/bin/node',
    '/opt/home port/100%/lib/node_modules/homeport/dist/src/cli/main.js',
    'agent',
    '--config',
    '/opt/home port/100%/etc/agent.toml',
  ]);
  assert.equal(daemon.RunAtLoad, true);
  assert.deepEqual(daemon.KeepAlive, { SuccessfulExit: false });
  assert.equal(daemon.ThrottleInterval, 30);
  assert.match(files[0]!.content, /<key>ThrottleInterval<\/key>\s*<integer>30<\/integer>/);
  assert.deepEqual(daemon.EnvironmentVariables, { NODE_ENV: 'production' });
});

test('the re-register job runs `homeport reregister` daily at an hour with a minute', () => {
  const job = macFiles('agent').get('org.homeport.agent.reregister.plist');
  assert.ok(job);
  assert.deepEqual(job.StartCalendarInterval, { Hour: 4, Minute: 20 });
  assert.deepEqual((job.ProgramArguments as string[]).slice(2), ['reregister', '--config', '/opt/home port/100%/etc/agent.toml']);
  assert.equal(job.KeepAlive, undefined, 'a calendar job must not be kept alive');
  assert.equal(macFiles('rendezvous').size, 1, 'the rendezvous has no re-register job');
});

test('XML special characters in paths and environment survive the round trip', () => {
  assert.equal(escapeXml(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;');
  const odd = { ...sampleDescription('agent', 'macos'), configPath: `/opt/<b> & "c" 'd'/agent.toml`, environment: { MARKUP: '</string><true/>' } };
  const [daemon] = renderServiceFiles(odd);
  const parsed = parsePlist(daemon!.content) as Dict;
  assert.equal((parsed.ProgramArguments as string[])[4], odd.configPath);
  assert.deepEqual(parsed.EnvironmentVariables, { MARKUP: '</string><true/>' });
});
