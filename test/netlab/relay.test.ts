import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { skipReason, startLab, type Lab, type LabChild, type NatType } from './lab.js';
import { curlFromRemote, homeport, startHomeport, until, waitForOutput, type LabSetup } from './homeport.js';
import { PROXY_V2_SIGNATURE } from '../../src/protocol/proxy-v2.js';

const skip = skipReason();
const MOVIE = randomBytes(8 * 1024 * 1024);
const MOVIE_SHA = createHash('sha256').update(MOVIE).digest('hex');
const RELAY_PORT = 9443;
const RELAY = `relay = "0.0.0.0:${RELAY_PORT}"`;

describe('port-restricted home: users go through the relay, TLS still ends at home', { skip }, () => {
  let lab: Lab;
  let setup: LabSetup;
  let agent: LabChild;
  let go: string;

  before(async () => {
    lab = await startLab({ home: 'prc', remote: 'prc' });
    // 192.0.2.0/24 is the remote router's WAN: the remote client is in the whitelist, nothing else is
    ({ setup, agent } = await startHomeport(lab, MOVIE, { allow: ['192.0.2.0/24'], agentEntryLines: RELAY }));
    go = `https://${lab.addresses.rendezvous}:8443/go/home/movie.bin`;
  });
  after(() => lab?.down());

  test('curl -L /go/home/movie.bin goes through the relay; the agent logs the remote client\'s real address', async () => {
    const relayUrl = `https://${lab.addresses.rendezvous}:${RELAY_PORT}/movie.bin`;
    const redirect = await until('a redirect to the relay once the punched port failed its check', 15_000, async () => {
      const answer = await curlFromRemote(lab, setup, go);
      return answer.code === '302' && answer.location === relayUrl ? answer : undefined;
    });
    assert.equal(redirect.location, relayUrl);
    const fetched = await curlFromRemote(lab, setup, go, ['-L']);
    assert.equal(fetched.code, '200');
    assert.equal(fetched.sha, MOVIE_SHA);
    const remoteWan = lab.addresses.remoteRouterWan;
    const access = agent.output().split('\n').find((line) => line.includes('"path":"/movie.bin"') && line.includes('"status":200'));
    assert.ok(access, `no access line for the download:\n${agent.output().slice(-2000)}`);
    assert.match(access, new RegExp(`"ip":"${remoteWan.replaceAll('.', '\\.')}"`), 'the gate and the log see the remote router, not the rendezvous');
  });

  test('the relay carries no plaintext: a capture on the rendezvous\'s side sees no HTTP and no byte of the file', async () => {
    const pcap = join(setup.dir, 'relay.pcap');
    const capture = lab.spawn('wan', ['tcpdump', '-i', 'any', '-s', '0', '-U', '-w', pcap, 'tcp']);
    await until('tcpdump writing', 5_000, async () => ((await readFile(pcap).catch(() => Buffer.alloc(0))).length > 0 ? true : undefined));
    const fetched = await curlFromRemote(lab, setup, go, ['-L']);
    assert.equal(fetched.sha, MOVIE_SHA);
    await capture.stop();
    const captured = await readFile(pcap);
    assert.ok(captured.length > MOVIE.length, `the capture holds ${captured.length} bytes, less than the file: it missed the transfer`);
    // positive control: the sealed PROXY header on the work connection is visible in the capture
    assert.ok(captured.includes(PROXY_V2_SIGNATURE), 'the capture should show the PROXY v2 header the relay sent to the agent');
    assert.equal(captured.includes(Buffer.from('GET /movie.bin')), false, 'the HTTP request must not appear in clear');
    const leaked = sampleLeaks(captured, MOVIE, 400, 24);
    assert.equal(leaked, 0, `${leaked} of 400 samples of the file appear in clear in the capture`);
  });
});

describe('fall forward and back: /go/ follows the reachability check', { skip }, () => {
  let lab: Lab;
  let setup: LabSetup;

  before(async () => {
    lab = await startLab({ home: 'prc', remote: 'prc' });
    ({ setup } = await startHomeport(lab, MOVIE, { allow: ['192.0.2.0/24'], agentEntryLines: RELAY }));
  });
  after(() => lab?.down());

  /** Waits until /go/ redirects to a location matching `pattern`; returns how long that took. */
  async function redirectsTo(pattern: RegExp): Promise<number> {
    const started = Date.now();
    await until(`a redirect matching ${pattern}`, 15_000, async () => {
      const answer = await curlFromRemote(lab, setup, `https://${lab.addresses.rendezvous}:8443/go/home/movie.bin`);
      return answer.code === '302' && pattern.test(answer.location) ? true : undefined;
    });
    return Date.now() - started;
  }

  test('the router turns full cone: direct within a check; it turns port-restricted again: relay within a check', async (t) => {
    const relay = new RegExp(`^https://${lab.addresses.rendezvous.replaceAll('.', '\\.')}:${RELAY_PORT}/`);
    const direct = new RegExp(`^https://${lab.addresses.homeRouterWan.replaceAll('.', '\\.')}:2\\d{4}/`);
    await redirectsTo(relay);
    await lab.setNat('home-router', 'fc');
    t.diagnostic(`prc → fc: direct after ${await redirectsTo(direct)} ms (probeInterval 2s)`);
    const fetched = await curlFromRemote(lab, setup, `https://${lab.addresses.rendezvous}:8443/go/home/movie.bin`, ['-L']);
    assert.equal(fetched.sha, MOVIE_SHA);
    await lab.setNat('home-router', 'prc');
    t.diagnostic(`fc → prc: relay after ${await redirectsTo(relay)} ms`);
  });
});

describe('a remote client outside the whitelist, through the relay', { skip }, () => {
  let lab: Lab;
  let setup: LabSetup;
  let agent: LabChild;

  before(async () => {
    lab = await startLab({ home: 'prc', remote: 'prc' });
    ({ setup, agent } = await startHomeport(lab, MOVIE, { allow: ['203.0.113.0/24'], agentEntryLines: `${RELAY}\nmode = "relay"` }));
  });
  after(() => lab?.down());

  test('is refused by the gate on its real address, before any TLS byte', async () => {
    const refused = await curlFromRemote(lab, setup, `https://${lab.addresses.rendezvous}:${RELAY_PORT}/movie.bin`);
    assert.notEqual(refused.code, '200');
    assert.notEqual(refused.exitCode, 0, 'curl must fail: no TLS handshake for a client outside the whitelist');
    const remoteWan = lab.addresses.remoteRouterWan.replaceAll('.', '\\.');
    await waitForOutput(agent, new RegExp(`"client":"${remoteWan}"[^\\n]*denied|denied[^\\n]*"client":"${remoteWan}"`), 5_000);
  });
});

describe('the agent dies during a relayed download', { skip }, () => {
  // larger than every socket buffer on the way (Linux grows each to several MiB), so the agent is still
  // sending when it dies
  const big = randomBytes(64 * 1024 * 1024);
  const bigSha = createHash('sha256').update(big).digest('hex');
  let lab: Lab;
  let setup: LabSetup;
  let rendezvous: LabChild;
  let agent: LabChild;

  before(async () => {
    lab = await startLab({ home: 'sym', remote: 'prc' });
    ({ setup, rendezvous, agent } = await startHomeport(lab, big, { allow: ['192.0.2.0/24'], agentEntryLines: `${RELAY}\nmode = "relay"` }));
  });
  after(() => lab?.down());

  test('the client sees the connection end at once; the rendezvous keeps serving, and relays again once the agent is back', async (t) => {
    const url = `https://${lab.addresses.rendezvous}:${RELAY_PORT}/movie.bin`;
    // a small receive buffer for the remote client, so the time measured is homeport's, not curl draining
    // the megabytes its own socket already holds (Linux grows it to 6 MiB)
    await lab.exec('remote', ['sysctl', '-qw', 'net.ipv4.tcp_rmem=4096 65536 262144']);
    const slow = lab.spawn('remote', ['curl', '-sS', '--cacert', setup.bundle, '--limit-rate', '5M', '-o', '/dev/null', '-w', '%{size_download}', url]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(slow.running, true, `the slow download should still run:\n${slow.output()}`);
    const killedAt = Date.now();
    agent.process.kill('SIGKILL');
    const status = await slow.exited;
    const ms = Date.now() - killedAt;
    t.diagnostic(`curl saw the end ${ms} ms after the kill`);
    assert.notEqual(status.code, 0, `curl must report the cut-off download:\n${slow.output()}`);
    assert.ok(ms < 2_000, `curl noticed after ${ms} ms`);
    assert.equal(rendezvous.running, true);
    const health = await curlFromRemote(lab, setup, `https://${lab.addresses.rendezvous}:8443/healthz`);
    assert.equal(health.code, '200');

    agent = homeport(lab, 'home', ['agent', '--config', setup.agentConfig]);
    await waitForOutput(agent, /registered with the rendezvous/);
    const fetched = await until('a relayed download after the agent came back', 15_000, async () => {
      const answer = await curlFromRemote(lab, setup, url);
      return answer.code === '200' ? answer : undefined;
    });
    assert.equal(fetched.sha, bigSha);
  });
});

/** `homeport connect` in the remote network: which path it takes for each pair of NATs. */
const CONNECT_CASES: { home: NatType; remote: NatType; path: string }[] = [
  { home: 'prc', remote: 'prc', path: 'punched' },
  { home: 'fc', remote: 'prc', path: 'direct' },
  { home: 'sym', remote: 'sym', path: 'relay' },
];

for (const { home, remote, path } of CONNECT_CASES) {
  describe(`homeport connect, ${home} home and ${remote} remote`, { skip }, () => {
    let lab: Lab;
    let setup: LabSetup;
    let agent: LabChild;

    before(async () => {
      lab = await startLab({ home, remote });
      ({ setup, agent } = await startHomeport(lab, MOVIE, { allow: ['192.0.2.0/24'], agentEntryLines: RELAY }));
    });
    after(() => lab?.down());

    test(`takes the ${path} path and downloads the file intact, TLS ending at home`, async (t) => {
      // fc: wait for the reachability check, so "direct" is offered; the others: for it to fail
      await waitForOutput(agent, /"msg":"reachability check"/, 15_000);
      const connect = homeport(lab, 'remote', ['connect', 'home', '--rendezvous', `${lab.addresses.rendezvous}:7000`, '--listen', '127.0.0.1:8443']);
      await waitForOutput(connect, /listening on 127\.0\.0\.1:8443/);
      const started = Date.now();
      const fetched = await curlFromRemote(lab, setup, 'https://localhost:8443/movie.bin');
      t.diagnostic(`${path}: ${Date.now() - started} ms for 8 MiB, including the path choice`);
      assert.equal(fetched.code, '200', connect.output());
      assert.equal(fetched.sha, MOVIE_SHA);
      const chosen = await waitForOutput(connect, /path to home: (\w+)/, 5_000);
      assert.equal(chosen[1], path, `${connect.output()}\nagent:\n${agent.output().split('\n').filter((line) => /punch/i.test(line)).join('\n')}`);
      await connect.stop();
    });
  });
}

/** How many of `count` random `size`-byte pieces of `file` appear verbatim in `haystack`. */
function sampleLeaks(haystack: Buffer, file: Buffer, count: number, size: number): number {
  let found = 0;
  for (let index = 0; index < count; index++) {
    const at = Math.floor(Math.random() * (file.length - size));
    if (haystack.includes(file.subarray(at, at + size))) found++;
  }
  return found;
}
