// Tests of the NAT lab itself, with probe children in its namespaces: every router type (the NAT types, and none
// and fw without NAT) maps and filters as it claims, the punched TCP port (connect from P, then listen on P) is
// reachable only through a full cone or without any NAT or firewall, a router "reboot" changes the mapping, and
// teardown, also of dead runs, leaves nothing behind.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ROUTER_TYPES, listNamespaces, skipReason, startLab, type Lab, type RouterType } from './lab.js';
import { startProbe, type Probe } from './probe-client.js';
import { formatEndpoint, parseEndpoint, type Endpoint } from './probe-protocol.js';

const skip = skipReason();
const run = promisify(execFile);

interface NatBehaviour {
  /** the home router rewrites the source (NAT types); none and fw leave home's own address and port */
  translates: boolean;
  /** one public port towards every destination */
  endpointIndependentMapping: boolean;
  /** once home sent to A:p, a packet from A:q gets in */
  admitsSameAddressOtherPort: boolean;
  /** … and one from another address B, or a TCP connection from remote to the punched port */
  admitsOtherAddress: boolean;
}

const BEHAVIOUR: Record<RouterType, NatBehaviour> = {
  none: { translates: false, endpointIndependentMapping: true, admitsSameAddressOtherPort: true, admitsOtherAddress: true },
  fw: { translates: false, endpointIndependentMapping: true, admitsSameAddressOtherPort: false, admitsOtherAddress: false },
  fc: { translates: true, endpointIndependentMapping: true, admitsSameAddressOtherPort: true, admitsOtherAddress: true },
  arc: { translates: true, endpointIndependentMapping: true, admitsSameAddressOtherPort: true, admitsOtherAddress: false },
  prc: { translates: true, endpointIndependentMapping: true, admitsSameAddressOtherPort: false, admitsOtherAddress: false },
  sym: { translates: true, endpointIndependentMapping: false, admitsSameAddressOtherPort: false, admitsOtherAddress: false },
};

/** an answer inside the lab takes a millisecond; this long without one means it was dropped */
const SILENCE_MS = 500;
const ANSWER_TIMEOUT_MS = 2_000;
const CONNECT_TIMEOUT_MS = 2_000;

/** reflectors in hp-wan: A:p, A:q and B:p */
interface Reflectors {
  primary: Endpoint;
  samePortOtherAddress: Endpoint;
  sameAddressOtherPort: Endpoint;
}

describe('NAT lab', { skip }, () => {
  let lab: Lab;
  let wan: Probe;
  let home: Probe;
  let remote: Probe;
  let udp: Reflectors;
  let tcp: Reflectors;
  let lastLocalPort = 41_000;
  const freshLocalPort = (): number => ++lastLocalPort;

  before(async () => {
    lab = await startLab({ home: 'fc', remote: 'prc' });
    [wan, home, remote] = await Promise.all([startProbe(lab, 'wan'), startProbe(lab, 'home'), startProbe(lab, 'remote')]);
    udp = reflectorsAt(lab, 3478, 3479);
    tcp = reflectorsAt(lab, 8000, 8001);
    for (const local of Object.values(udp)) await wan.call('udp-bind', { local, reflect: true });
    for (const local of Object.values(tcp)) await wan.call('tcp-reflect', { local });
  });
  after(() => lab?.down());

  async function bindHomeUdp(): Promise<number> {
    const port = freshLocalPort();
    await home.call('udp-bind', { local: { port }, reflect: false });
    return port;
  }

  async function mappedUdp(port: number, to: Endpoint): Promise<Endpoint> {
    const answer = await home.call('udp-ask', { local: { port }, to, payload: 'who am I?', timeoutMs: ANSWER_TIMEOUT_MS });
    assert.ok(answer, `no UDP answer from ${formatEndpoint(to)}`);
    return parseEndpoint(answer.payload);
  }

  async function mappedTcp(localPort: number, to: Endpoint): Promise<{ mapped: Endpoint; connection: number }> {
    const outcome = await home.call('tcp-request', { to, localPort, timeoutMs: ANSWER_TIMEOUT_MS });
    assert.ok('reply' in outcome, `TCP from :${localPort} to ${formatEndpoint(to)}: ${JSON.stringify(outcome)}`);
    return { mapped: parseEndpoint(outcome.reply), connection: outcome.connection };
  }

  function assertMapping(type: RouterType, localPort: number, mapped: readonly Endpoint[]): void {
    for (const endpoint of mapped) {
      if (BEHAVIOUR[type].translates) {
        assert.equal(endpoint.host, lab.addresses.homeRouterWan);
        assert.notEqual(endpoint.port, localPort, 'the lab maps to public ports apart from the local ones');
      } else {
        assert.deepEqual(endpoint, { host: lab.addresses.home, port: localPort }, 'no NAT: home is seen as itself');
      }
    }
    const distinctPorts = new Set(mapped.map((endpoint) => endpoint.port)).size;
    const seen = mapped.map(formatEndpoint).join(', ');
    if (BEHAVIOUR[type].endpointIndependentMapping) assert.equal(distinctPorts, 1, `one mapping expected: ${seen}`);
    else assert.ok(distinctPorts > 1, `a mapping per destination expected: ${seen}`);
  }

  /** Whether a datagram that home never asked for, sent from `from` to home's mapped endpoint, gets in. */
  async function unsolicitedGetsIn(port: number, mapped: Endpoint, from: Endpoint): Promise<boolean> {
    const payload = `unsolicited from ${formatEndpoint(from)}`;
    await wan.call('udp-send', { local: from, to: mapped, payload });
    const received = await home.call('udp-receive', { local: { port }, timeoutMs: SILENCE_MS });
    if (received) assert.deepEqual(received, { from, payload });
    return received !== null;
  }

  for (const type of ROUTER_TYPES) {
    const expected = BEHAVIOUR[type];
    const mapping = expected.endpointIndependentMapping ? 'endpoint-independent' : 'address-and-port-dependent';

    describe(`home router ${type}`, () => {
      before(() => lab.setNat('home-router', type));

      test(`UDP mapping is ${mapping}`, async () => {
        const port = await bindHomeUdp();
        const mapped: Endpoint[] = [];
        for (const to of Object.values(udp)) mapped.push(await mappedUdp(port, to));
        assertMapping(type, port, mapped);
      });

      test(`UDP filtering: other port of the contacted address ${expected.admitsSameAddressOtherPort ? 'gets in' : 'is dropped'}, other address ${expected.admitsOtherAddress ? 'gets in' : 'is dropped'}`, async () => {
        const port = await bindHomeUdp();
        const mapped = await mappedUdp(port, udp.primary);
        assert.equal(await unsolicitedGetsIn(port, mapped, udp.sameAddressOtherPort), expected.admitsSameAddressOtherPort);
        assert.equal(await unsolicitedGetsIn(port, mapped, udp.samePortOtherAddress), expected.admitsOtherAddress);
      });

      test(`TCP mapping is ${mapping}`, async () => {
        const port = freshLocalPort();
        const mapped: Endpoint[] = [];
        for (const to of Object.values(tcp)) mapped.push((await mappedTcp(port, to)).mapped);
        assertMapping(type, port, mapped);
      });

      test(`TCP listener on the punched port ${expected.admitsOtherAddress ? 'is reachable' : 'times out'} from remote`, async () => {
        const port = freshLocalPort();
        const { mapped } = await mappedTcp(port, tcp.primary); // connect from P first, then listen on P
        await home.call('tcp-listen', { port, greeting: 'hello from home' });
        const outcome = await remote.call('tcp-request', { to: mapped, timeoutMs: CONNECT_TIMEOUT_MS });
        if (expected.admitsOtherAddress) assert.equal('reply' in outcome && outcome.reply, 'hello from home');
        else assert.deepEqual(outcome, { failure: 'timeout' });
      });
    });
  }

  test('a router reboot changes the mapping and resets open TCP connections; a new WAN address shows, and routes the LAN', async () => {
    await lab.setNat('home-router', 'fc');
    const port = await bindHomeUdp();
    const beforeReboot = await mappedUdp(port, udp.primary);
    const { connection } = await mappedTcp(freshLocalPort(), tcp.primary);

    await lab.rebootRouter('home-router');
    const afterReboot = await mappedUdp(port, udp.primary);
    assert.equal(afterReboot.host, beforeReboot.host);
    assert.notEqual(afterReboot.port, beforeReboot.port);
    assert.equal(await home.call('tcp-write', { connection, timeoutMs: ANSWER_TIMEOUT_MS }), 'ECONNRESET');
    assert.ok(await unsolicitedGetsIn(port, afterReboot, udp.samePortOtherAddress), 'still a full cone after the reboot');

    await lab.rebootRouter('home-router', { newWanAddress: '198.51.100.3' });
    assert.equal(lab.addresses.homeRouterWan, '198.51.100.3');
    assert.equal((await mappedUdp(port, udp.primary)).host, '198.51.100.3');
    await lab.setNat('home-router', 'none');
    assert.deepEqual(await mappedUdp(port, udp.primary), { host: lab.addresses.home, port }, 'hp-wan routes the LAN via the new WAN address');
    await assert.rejects(lab.rebootRouter('home-router', { newWanAddress: '10.0.0.1' }), /198\.51\.100\.2 to 198\.51\.100\.254/);
  });

  test('a lab goes down completely, twice is harmless, and namespaces of dead runs are swept at start', async () => {
    const deadNamespace = `hp-home-${await pidOfAnExitedProcess()}-dead`;
    await run('ip', ['netns', 'add', deadNamespace]);
    const leftover = spawn('ip', ['netns', 'exec', deadNamespace, 'sh', '-c', 'echo inside; exec sleep 30'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const leftoverExit = once(leftover, 'exit');
    await once(leftover.stdout, 'data');
    const second = await startLab({ home: 'prc', remote: 'sym' });
    try {
      assert.equal((await leftoverExit)[1], 'SIGKILL');
      const present = await listNamespaces();
      assert.ok(!present.includes(deadNamespace), `${deadNamespace} should be swept`);
      for (const name of Object.values(lab.names)) assert.ok(present.includes(name), `live lab's ${name} was swept`);

      const sleeper = second.spawn('home', ['sleep', '30']);
      await second.down();
      await second.down();
      assert.equal((await sleeper.exited).signal, 'SIGTERM');
      assert.deepEqual((await listNamespaces()).filter((name) => name.endsWith(second.id)), []);
      assert.throws(() => second.spawn('home', ['true']), /is down/);
    } finally {
      leftover.kill('SIGKILL');
      await run('ip', ['netns', 'del', deadNamespace]).catch(() => undefined); // already gone unless a check failed
      await second.down();
    }
  });
});

function reflectorsAt(lab: Lab, port: number, otherPort: number): Reflectors {
  const { rendezvous, rendezvousAlt } = lab.addresses;
  return {
    primary: { host: rendezvous, port },
    sameAddressOtherPort: { host: rendezvous, port: otherPort },
    samePortOtherAddress: { host: rendezvousAlt, port },
  };
}

async function pidOfAnExitedProcess(): Promise<number> {
  const child = spawn('true');
  await once(child, 'exit');
  assert.ok(child.pid);
  return child.pid;
}
