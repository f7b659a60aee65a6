import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AgentMode } from '../../src/config/rendezvous-types.js';
import type { PathName } from '../../src/protocol/messages.js';
import { choosePath } from '../../src/rendezvous/path.js';
import type { AgentRecord, Reachability } from '../../src/rendezvous/registry.js';

const CHECKED = '2030-01-01T04:00:07.000Z';
const OFFLINE_SINCE = '2030-01-01T03:59:00.000Z';
const REACHABILITY: Record<'unknown' | 'reachable' | 'unreachable', Reachability> = {
  unknown: { state: 'unknown' },
  reachable: { state: 'reachable', checkedAt: CHECKED },
  unreachable: { state: 'unreachable', reason: 'connect timeout', checkedAt: CHECKED },
};
type Status = 'online' | 'offline' | 'never';

function record(status: Status, reach: keyof typeof REACHABILITY): AgentRecord {
  const base: AgentRecord = { name: 'home', online: status === 'online', reachability: REACHABILITY[reach], addressChanges: 0 };
  if (status === 'never') return base;
  return { ...base, publicAddress: { ip: '198.51.100.2', port: 20001 }, ...(status === 'offline' ? { offlineSince: OFFLINE_SINCE } : {}) };
}

const STATUSES: Status[] = ['online', 'offline', 'never'];
const REACHES = ['unknown', 'reachable', 'unreachable'] as const;
const MODES: AgentMode[] = ['auto', 'direct', 'relay'];

const REACHABLE_WHY = /passed the reachability check at 2030-01-01T04:00:07\.000Z/;
const UNREACHABLE_WHY = /unreachable: connect timeout \(checked at 2030-01-01T04:00:07\.000Z\)/;

/** Online agents: [reachability, mode, has relay] → path and what the reason must say. */
const ONLINE: [reach: (typeof REACHES)[number], mode: AgentMode, relay: boolean, path: PathName, why: RegExp][] = [
  ['unknown', 'auto', true, 'relay', /not checked yet/],
  ['unknown', 'auto', false, 'direct', /being checked/],
  ['unknown', 'direct', true, 'direct', /being checked/],
  ['unknown', 'direct', false, 'direct', /being checked/],
  ['unknown', 'relay', true, 'relay', /^mode = "relay"$/],
  ['unknown', 'relay', false, 'direct', /being checked/], // config refuses relay mode without relay; treated as direct
  ['reachable', 'auto', true, 'direct', REACHABLE_WHY],
  ['reachable', 'auto', false, 'direct', REACHABLE_WHY],
  ['reachable', 'direct', true, 'direct', REACHABLE_WHY],
  ['reachable', 'direct', false, 'direct', REACHABLE_WHY],
  ['reachable', 'relay', true, 'relay', /^mode = "relay"$/],
  ['reachable', 'relay', false, 'direct', REACHABLE_WHY],
  ['unreachable', 'auto', true, 'relay', UNREACHABLE_WHY],
  ['unreachable', 'auto', false, 'none', /^home is unreachable: connect timeout \(checked at 2030-01-01T04:00:07\.000Z\)$/],
  ['unreachable', 'direct', true, 'none', /^home is unreachable: connect timeout \(checked at 2030-01-01T04:00:07\.000Z\)$/],
  ['unreachable', 'direct', false, 'none', /^home is unreachable: connect timeout/],
  ['unreachable', 'relay', true, 'relay', /^mode = "relay"$/],
  ['unreachable', 'relay', false, 'none', /^home is unreachable: connect timeout/],
];

test('the full table: online/offline/never connected × reachability × mode × relay', () => {
  let rows = 0;
  for (const status of STATUSES) {
    for (const reach of REACHES) {
      for (const mode of MODES) {
        for (const relay of [true, false]) {
          const label = `${status}, ${reach}, mode ${mode}, relay ${relay ? 'present' : 'absent'}`;
          const choice = choosePath(record(status, reach), { mode, ...(relay ? { port: 9443 } : {}) });
          if (status === 'never') {
            assert.deepEqual(choice, { path: 'none', reason: 'home has not connected to the rendezvous yet' }, label);
          } else if (status === 'offline') {
            assert.deepEqual(choice, { path: 'none', reason: `home is offline since ${OFFLINE_SINCE}` }, label);
          } else {
            const row = ONLINE.find(([r, m, p]) => r === reach && m === mode && p === relay)!;
            assert.equal(choice.path, row[3], label);
            assert.match(choice.reason, row[4], label);
          }
          rows++;
        }
      }
    }
  }
  assert.equal(rows, 54);
  assert.equal(new Set(ONLINE.map(([r, m, p]) => `${r}/${m}/${p}`)).size, 18, 'every online combination is in the table once');
});

test('missing times and reasons are said in words, never "undefined"', () => {
  const bare: AgentRecord[] = [
    { name: 'home', online: false, publicAddress: { ip: '198.51.100.2', port: 1 }, reachability: { state: 'unknown' }, addressChanges: 0 },
    { name: 'home', online: true, publicAddress: { ip: '198.51.100.2', port: 1 }, reachability: { state: 'reachable' }, addressChanges: 0 },
    { name: 'home', online: true, publicAddress: { ip: '198.51.100.2', port: 1 }, reachability: { state: 'unreachable' }, addressChanges: 0 },
  ];
  const expected: [path: PathName, why: RegExp][] = [
    ['none', /offline since the rendezvous started/],
    ['direct', /at an unknown time/],
    ['none', /unreachable: unknown reason \(checked at an unknown time\)/],
  ];
  bare.forEach((agent, index) => {
    const choice = choosePath(agent, { mode: 'auto' });
    assert.equal(choice.path, expected[index]![0]);
    assert.match(choice.reason, expected[index]![1]);
    assert.doesNotMatch(choice.reason, /undefined/);
  });
  const relayed = choosePath(bare[2]!, { mode: 'auto', port: 9443 });
  assert.equal(relayed.path, 'relay');
  assert.match(relayed.reason, /unreachable: unknown reason \(checked at an unknown time\)/);
});

test('the agent name in the reason is the record\'s', () => {
  const agent: AgentRecord = { name: 'cabin-2', online: false, reachability: { state: 'unknown' }, addressChanges: 0 };
  assert.match(choosePath(agent, { mode: 'auto', port: 9443 }).reason, /^cabin-2 /);
  assert.match(choosePath({ ...agent, publicAddress: { ip: '192.0.2.1', port: 2 } }, { mode: 'auto', port: 9443 }).reason, /^cabin-2 is offline/);
  assert.match(choosePath({ ...agent, online: true, publicAddress: { ip: '192.0.2.1', port: 2 }, reachability: { state: 'unreachable', reason: 'refused' } }, { mode: 'direct', port: 9443 }).reason, /^cabin-2 is unreachable: refused/);
});
