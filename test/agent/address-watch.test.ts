import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { interfacesFingerprint, watchAddress } from '../../src/agent/address-watch.js';
import { waitFor } from '../helpers/wait.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function iface(address: string, cidr: string, internal = false): NetworkInterfaceInfo {
  return { address, cidr, internal, family: 'IPv4', netmask: '255.255.255.0', mac: '00:00:00:00:00:00' };
}

test('interfacesFingerprint changes when a non-loopback address comes, goes or moves, not on reordering', () => {
  const base = { lo: [iface('127.0.0.1', '127.0.0.1/8', true)], eth0: [iface('192.168.1.10', '192.168.1.10/24')], ppp0: [iface('100.64.3.4', '100.64.3.4/32')] };
  const same = (a: NodeJS.Dict<NetworkInterfaceInfo[]>, b: NodeJS.Dict<NetworkInterfaceInfo[]>): boolean => interfacesFingerprint(a) === interfacesFingerprint(b);
  const cases: Array<[what: string, other: NodeJS.Dict<NetworkInterfaceInfo[]>, unchanged: boolean]> = [
    ['listed in another order', { ppp0: base.ppp0, eth0: base.eth0, lo: base.lo }, true],
    ['loopback gained an alias', { ...base, lo: [...base.lo, iface('127.0.0.2', '127.0.0.2/8', true)] }, true],
    ['PPPoE redial: new address', { ...base, ppp0: [iface('100.64.9.9', '100.64.9.9/32')] }, false],
    ['PPPoE link down', { lo: base.lo, eth0: base.eth0 }, false],
    ['new DHCP lease', { ...base, eth0: [iface('192.168.1.11', '192.168.1.11/24')] }, false],
    ['same address moved to another interface', { lo: base.lo, eth1: base.eth0, ppp0: base.ppp0 }, false],
  ];
  for (const [what, other, unchanged] of cases) assert.equal(same(base, other), unchanged, what);
});

test('the address watch re-registers when the interfaces change and when heartbeats go stale', async () => {
  let interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = { eth0: [iface('192.168.1.10', '192.168.1.10/24')] };
  let clockOffsetMs = 0;
  let connected = true;
  const lastHeartbeat = new Date();
  const reasons: string[] = [];
  const stop = watchAddress({
    reregister: (reason) => reasons.push(reason),
    connected: () => connected,
    lastHeartbeat: () => lastHeartbeat,
    heartbeatMs: 1000,
    readInterfaces: () => interfaces,
    now: () => Date.now() + clockOffsetMs,
    interfacePollMs: 20,
    recheckMs: 20,
  });
  try {
    await sleep(150);
    assert.deepEqual(reasons, [], 'nothing changed, heartbeats fresh');
    interfaces = { eth0: [iface('192.168.1.77', '192.168.1.77/24')] };
    await waitFor('the interface change', () => reasons.length > 0);
    await sleep(100);
    assert.deepEqual(reasons, ['network interfaces changed'], 'one re-register per change');

    connected = false;
    clockOffsetMs = 3_600_000; // woke from an hour of sleep
    await sleep(150);
    assert.equal(reasons.length, 1, 'a disconnected link is already retrying; no extra re-register');
    connected = true;
    await waitFor('the stale-heartbeat re-check', () => reasons.length > 1);
    assert.equal(reasons[1], 'public address re-check: heartbeat replies stale');
  } finally {
    stop();
  }
  const count = reasons.length;
  await sleep(100);
  assert.equal(reasons.length, count, 'a stopped watch does nothing');
});
