import assert from 'node:assert/strict';
import { isAbsolute } from 'node:path';
import { test } from 'node:test';
import { parse as parsePlist } from 'plist';
import { renderServiceFiles } from '../../src/service/files.js';
import { describeService, type ServiceDescription } from '../../src/service/description.js';
import { escapeXml } from '../../src/service/launchd.js';
import { NEWSYSLOG_DIR } from '../../src/service/newsyslog.js';
import { sampleDescription } from '../../src/service/samples.js';

type Dict = Record<string, unknown>;

function macFiles(program: 'agent' | 'rendezvous'): Map<string, Dict> {
  const files = renderServiceFiles(sampleDescription(program, 'macos')).filter((file) => file.name.endsWith('.plist'));
  return new Map(files.map((file) => [file.name, parsePlist(file.content) as Dict]));
}

/** The value after a flag in ProgramArguments. */
function argumentOf(job: Dict, flag: string): string | undefined {
  const args = job.ProgramArguments as string[];
  return args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined;
}

function pathsOf(job: Dict): string[] {
  const args = job.ProgramArguments as string[];
  const flagged = ['--config', '--log-file', '--pid-file'].map((flag) => argumentOf(job, flag)).filter((value) => value !== undefined);
  const cli = args.slice(1).find((arg) => !arg.startsWith('--'))!; // node flags come before the CLI's path
  return [args[0]!, cli, ...flagged, job.WorkingDirectory as string, job.StandardOutPath as string, job.StandardErrorPath as string];
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

test('the rendezvous starts node with a larger initial old generation (the relay\'s GC cost), the agent without', () => {
  const [rendezvous] = renderServiceFiles(sampleDescription('rendezvous', 'macos'));
  const [agent] = renderServiceFiles(sampleDescription('agent', 'macos'));
  const argsOf = (content: string): string[] => (parsePlist(content) as Dict).ProgramArguments as string[];
  assert.deepEqual(argsOf(rendezvous!.content).slice(1, 3), ['--initial-old-space-size=64', '/opt/home port/100%/lib/node_modules/homeport/dist/src/cli/main.js']);
  assert.ok(!argsOf(agent!.content).some((arg) => arg.startsWith('--initial-old-space-size')));
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
    '--log-file',
    '/usr/local/var/log/homeport-agent/agent.log',
    '--pid-file',
    '/usr/local/var/lib/homeport-agent/agent.pid',
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
  assert.deepEqual((job.ProgramArguments as string[]).slice(2), ['reregister', '--config', '/opt/home port/100%/etc/agent.toml'], 'no log or pid file: it is not the daemon');
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

/** A newsyslog.conf line split into its named fields (newsyslog.conf(5): whitespace-separated, "#" comments). */
interface NewsyslogEntry {
  logfile: string;
  owner: string;
  mode: string;
  count: string;
  size: string;
  when: string;
  flags: string;
  pidFile?: string;
  signal?: string;
}

function parseNewsyslog(text: string): NewsyslogEntry[] {
  return text
    .split('\n')
    .map((line) => line.replace(/(^|[^\\])#.*$/, '$1').trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [logfile, owner, mode, count, size, when, flags, pidFile, signal, ...extra] = line.split(/\s+/).map((f) => f.replaceAll('\\#', '#'));
      assert.deepEqual(extra, [], `too many fields: ${line}`);
      return { logfile: logfile!, owner: owner!, mode: mode!, count: count!, size: size!, when: when!, flags: flags!, ...(pidFile && { pidFile }), ...(signal && { signal }) };
    });
}

function newsyslogOf(d: ServiceDescription): { name: string; entries: NewsyslogEntry[] } {
  const file = renderServiceFiles(d).find((f) => f.directory === NEWSYSLOG_DIR);
  assert.ok(file, 'no newsyslog.d file');
  return { name: file.name, entries: parseNewsyslog(file.content) };
}

test('the newsyslog entry rotates the log file the daemon writes and sends SIGHUP to the pid in the pid file it writes', () => {
  for (const program of ['agent', 'rendezvous'] as const) {
    const d = sampleDescription(program, 'macos');
    const daemon = parsePlist(renderServiceFiles(d)[0]!.content) as Dict;
    const { name, entries } = newsyslogOf(d);
    assert.equal(name, `${String(daemon.Label)}.conf`);
    const [log, console] = entries;
    assert.equal(entries.length, 2);
    assert.ok(log && console);
    assert.ok(isAbsolute(log.logfile));
    assert.equal(log.logfile, argumentOf(daemon, '--log-file'));
    assert.equal(log.pidFile, argumentOf(daemon, '--pid-file'));
    assert.ok(log.pidFile && isAbsolute(log.pidFile) && log.pidFile.startsWith(`${d.stateDirectory}/`), 'the pid file is where its user may write');
    assert.equal(log.signal, '1');
    assert.equal(log.owner, 'homeport:', 'rotated and new log files belong to the service user, who reopens them');
    assert.ok(log.flags.includes('B'), 'no "turned over" line inside a JSON-lines log');
    assert.ok(!log.flags.includes('N'));
    assert.match(log.mode, /^[0-7]{3}$/);
    assert.ok(Number(log.count) > 0);
    // launchd's own output file: a separate file (launchd holds it open), rotated by size, no one signalled.
    assert.equal(console.logfile, daemon.StandardErrorPath);
    assert.equal(console.logfile, daemon.StandardOutPath);
    assert.notEqual(console.logfile, log.logfile);
    assert.ok(console.flags.includes('N'));
    assert.equal(console.pidFile, undefined);
  }
});

test('a "#" in a newsyslog path is escaped; paths with whitespace are refused, naming the field and the config key', () => {
  const hashed = { ...sampleDescription('agent', 'macos'), stateDirectory: '/usr/local/var/lib/homeport#1', logDirectory: '/Library/Logs/homeport#1' };
  const [log] = newsyslogOf(hashed).entries;
  assert.equal(log?.logfile, '/Library/Logs/homeport#1/agent.log');
  assert.equal(log?.pidFile, '/usr/local/var/lib/homeport#1/agent.pid');

  const spaced = describeService({ ...sampleDescription('agent', 'macos'), stateDirectory: '/Users/Shared/home port/state' });
  assert.equal(spaced.ok, false);
  assert.match(!spaced.ok ? spaced.error : '', /^service stateDirectory "\/Users\/Shared\/home port\/state": the log rotation entry .*cannot hold a path with spaces.*\(stateDir in the config\)$/);
});
