import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dailyTimeFromCron, describeService, needsBindCapability, type ServiceInputs } from '../../src/service/description.js';

const LINUX_AGENT: ServiceInputs = {
  program: 'agent',
  platform: 'linux',
  nodePath: '/usr/bin/node',
  cliPath: '/usr/lib/node_modules/homeport/dist/src/cli/main.js',
  configPath: '/etc/homeport/agent.toml',
  user: 'homeport',
  stateDirectory: '/var/lib/homeport-agent',
  logDirectory: '/var/log/homeport-agent',
  listenPorts: [8443, 8443, 80],
};

function problemsOf(changes: Partial<ServiceInputs>): string[] {
  const described = describeService({ ...LINUX_AGENT, ...changes });
  return described.ok ? [] : described.error.split('\n');
}

test('describeService names the service per platform and defaults the working directory to the state directory', () => {
  const linux = describeService(LINUX_AGENT);
  assert.ok(linux.ok, linux.ok ? '' : linux.error);
  assert.equal(linux.value.label, 'homeport-agent');
  assert.equal(linux.value.workingDirectory, '/var/lib/homeport-agent');
  assert.deepEqual(linux.value.listenPorts, [80, 8443]);
  const mac = describeService({ ...LINUX_AGENT, program: 'rendezvous', platform: 'macos' });
  assert.ok(mac.ok);
  assert.equal(mac.value.label, 'org.homeport.rendezvous');
});

test('a relative or unnormalized path is refused with the field and the fix', () => {
  const relative = problemsOf({ configPath: 'etc/agent.toml' });
  assert.equal(relative.length, 1);
  assert.match(relative[0]!, /configPath "etc\/agent\.toml".*relative.*absolute path/);
  assert.match(problemsOf({ stateDirectory: '~/homeport' }).join('\n'), /stateDirectory "~\/homeport": is relative/);
  assert.match(problemsOf({ cliPath: '/opt/x/../main.js' })[0]!, /cliPath.*use "\/opt\/main\.js"/);
  assert.match(problemsOf({ logDirectory: '/var/log/a\nb' })[0]!, /logDirectory.*control character/);
});

test('node binaries from version managers are refused with a clear message', () => {
  const managed = [
    '/Users/ann/.nvm/versions/node/v20.11.0/bin/node',
    '/Users/ann/.volta/tools/image/node/20.11.0/bin/node',
    '/Users/ann/.asdf/installs/nodejs/20.11.0/bin/node',
    '/Users/ann/.local/share/fnm/node-versions/v20.11.0/installation/bin/node',
    '/Users/ann/.nodenv/versions/20.11.0/bin/node',
  ];
  for (const nodePath of managed) {
    const problems = problemsOf({ platform: 'macos', nodePath });
    assert.equal(problems.length, 1, nodePath);
    assert.match(problems[0]!, /version manager .*install node system-wide/, nodePath);
  }
  assert.deepEqual(problemsOf({ platform: 'macos', nodePath: '/opt/homebrew/bin/node' }), []);
});

test('on Linux a node binary or file under /home, /root or /run/user is refused because ProtectHome hides it', () => {
  assert.match(problemsOf({ nodePath: '/home/ann/node/bin/node' })[0]!, /nodePath.*ProtectHome=true hides \/home.*\/usr\/bin\/node/);
  assert.match(problemsOf({ nodePath: '/opt/"node"/bin/node' })[0]!, /nodePath.*systemd refuses an executable path with quotes/);
  assert.match(problemsOf({ configPath: '/root/agent.toml' })[0]!, /configPath.*ProtectHome=true hides \/root/);
  assert.deepEqual(problemsOf({ platform: 'macos', nodePath: '/home/ann/node/bin/node' }), [], 'macOS has no ProtectHome');
});

test('bad users, environment names, ports and calendar times are refused, every problem on its own line', () => {
  const problems = problemsOf({
    user: 'Home Port',
    environment: { 'BAD-NAME': 'x', GOOD: 'a\nb' },
    listenPorts: [0, 70000, 443.5],
    reregisterCalendar: { hour: 24, minute: 60 },
  });
  assert.equal(problems.length, 8);
  assert.match(problems.join('\n'), /user "Home Port"/);
  assert.match(problems.join('\n'), /environment name "BAD-NAME"/);
  assert.match(problems.join('\n'), /environment GOOD: .*control character/);
  assert.match(problems.join('\n'), /port 70000/);
  assert.match(problems.join('\n'), /hour 24: use 0 to 23/);
  assert.match(problems.join('\n'), /minute 60: use 0 to 59/);
  assert.match(problemsOf({ program: 'rendezvous', reregisterCalendar: { hour: 4, minute: 20 } })[0]!, /only the agent re-registers/);
});

test('CAP_NET_BIND_SERVICE is needed only for a port below 1024', () => {
  const low = describeService({ ...LINUX_AGENT, listenPorts: [1023, 8443] });
  const high = describeService({ ...LINUX_AGENT, listenPorts: [1024, 8443] });
  assert.ok(low.ok && high.ok);
  assert.equal(needsBindCapability(low.value), true);
  assert.equal(needsBindCapability(high.value), false);
});

test('dailyTimeFromCron reads one fixed daily time and nothing else', () => {
  const cases: [string, { hour: number; minute: number } | undefined][] = [
    ['0 20 4 * * *', { hour: 4, minute: 20 }],
    ['20 4 * * *', { hour: 4, minute: 20 }],
    ['  0 5 23 * * * ', { hour: 23, minute: 5 }],
    ['0 20 4 * * 1', undefined],
    ['* 20 4 * * *', undefined],
    ['0 */5 * * * *', undefined],
    ['0 60 4 * * *', undefined],
    ['0 20 24 * * *', undefined],
    ['20 4', undefined],
  ];
  for (const [expression, expected] of cases) assert.deepEqual(dailyTimeFromCron(expression), expected, expression);
});

test('on Linux a stateDir in /tmp or /var/tmp is refused (PrivateTmp hides it), naming the config key; look-alikes and macOS are fine', () => {
  const cases: [string, 'linux' | 'macos', boolean][] = [
    ['/tmp', 'linux', true],
    ['/tmp/homeport', 'linux', true],
    ['/var/tmp/homeport/state', 'linux', true],
    ['/tmpfs/homeport', 'linux', false],
    ['/var/tmpdata', 'linux', false],
    ['/var/lib/homeport-agent', 'linux', false],
    ['/tmp/homeport', 'macos', false],
  ];
  for (const [stateDirectory, platform, refused] of cases) {
    // "/tmp" itself is also a system directory: that is a second line, about the same key
    const problems = problemsOf({ stateDirectory, platform }).filter((problem) => !problem.includes('is a system directory'));
    assert.equal(problems.length, refused ? 1 : 0, `${platform} ${stateDirectory}: ${problems.join('; ')}`);
    if (refused) assert.match(problems[0]!, /^stateDir ".*" \(the config's stateDir\) is under \/(var\/)?tmp: .*PrivateTmp=yes.*e\.g\. stateDir = "\/var\/lib\/homeport-agent"$/);
  }
});

test('a state or log directory that is a system directory (or a whole home or disk) is refused, naming the key and the fix; a directory of its own is fine', () => {
  const cases: [string, 'linux' | 'macos', boolean][] = [
    ['/', 'linux', true],
    ['/opt', 'linux', true],
    ['/usr', 'linux', true],
    ['/srv', 'linux', true],
    ['/homeport', 'linux', true], // any depth-1 path: it sits next to the system's own
    ['/var/lib', 'linux', true],
    ['/var/log', 'linux', true],
    ['/usr/local', 'linux', true],
    ['/var/cache', 'linux', true],
    ['/etc/systemd', 'linux', true],
    ['/mnt/user', 'linux', true],
    ['/usr/local/var/lib', 'macos', true],
    ['/opt/homebrew/var', 'macos', true],
    ['/Library/Logs', 'macos', true],
    ['/library/logs', 'macos', true], // APFS ignores case
    ['/private/var/log', 'macos', true],
    ['/Users/alice', 'macos', true],
    ['/Volumes/Data', 'macos', true],
    ['/var/lib/homeport-agent', 'linux', false],
    ['/opt/homeport', 'linux', false],
    ['/srv/homeport/state', 'linux', false],
    ['/etc/homeport', 'linux', false],
    ['/mnt/user/appdata/homeport', 'linux', false],
    ['/usr/local/var/lib/homeport-agent', 'macos', false],
    ['/Library/Logs/homeport-agent', 'macos', false],
    ['/Users/alice/homeport', 'macos', false],
  ];
  for (const [dir, platform, refused] of cases) {
    const state = problemsOf({ platform, stateDirectory: dir, workingDirectory: '/var/lib/homeport-agent' });
    const log = problemsOf({ platform, logDirectory: dir });
    if (!refused) {
      assert.deepEqual([...state, ...log], [], `${platform} ${dir}`);
      continue;
    }
    assert.equal(state.length, 1, `${platform} ${dir}: ${state.join('; ')}`);
    assert.equal(state[0], `stateDir "${dir}" (the config's stateDir) is a system directory: install-service would make the service's user its owner (install -d -o); set stateDir to a directory of homeport's own, e.g. stateDir = "/var/lib/homeport-agent"`);
    assert.equal(log.length, 1, `${platform} ${dir}: ${log.join('; ')}`);
    assert.match(log[0]!, new RegExp(`^service logDirectory "${dir}" is a system directory: .*use a directory of homeport's own, e\\.g\\. "\\S+/homeport-agent"$`));
  }
});
