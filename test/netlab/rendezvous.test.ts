import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { skipReason, startLab, type Lab, type LabChild } from './lab.js';
import { CLI, curlFromRemote, homeport, startHomeport, until, waitForOutput, type LabSetup } from './homeport.js';
import { runCli } from '../helpers/cli.js';

const skip = skipReason();
const MOVIE = randomBytes(8 * 1024 * 1024);
const MOVIE_SHA = createHash('sha256').update(MOVIE).digest('hex');

describe('full-cone home: the punched port, the redirect, router reboots', { skip }, () => {
  let lab: Lab;
  let setup: LabSetup;
  let rendezvous: LabChild;
  let agent: LabChild;
  let go: string;
  /** A rendezvous admin key for the remote phone, made while the rendezvous runs. */
  let phoneKey: string;

  before(async () => {
    lab = await startLab({ home: 'fc', remote: 'prc' });
    ({ setup, rendezvous, agent } = await startHomeport(lab, MOVIE, { allow: [] }));
    go = `https://${lab.addresses.rendezvous}:8443/go/home/movie.bin`;
    const keygen = await runCli(['keygen', '--config', setup.rendezvousConfig, '--note', 'remote phone']);
    assert.equal(keygen.code, 0, keygen.stderr);
    phoneKey = keygen.stdout.trim();
  });
  after(() => lab?.down());

  /**
   * The phone's way in: allow-me from the remote network, through its NAT, to the rendezvous, which passes
   * it to the agent over the control connection. Each test that downloads from the remote calls it, so no
   * test depends on another having let the remote in.
   */
  async function allowRemote(): Promise<string> {
    const allowMe = await lab.exec('remote', [
      'env', `HOMEPORT_ADMIN_KEY=${phoneKey}`, process.execPath, CLI, 'allow-me',
      '--via', `https://${lab.addresses.rendezvous}:8443/api/agents/home/`, '--ca', join(setup.dir, 'rv-certs', 'ca.pem'),
    ]);
    return allowMe.stdout;
  }

  /** Takes the remote off the whitelist (if it is on it), for the test that starts from a stranger. */
  async function forgetRemote(): Promise<void> {
    await lab.exec('remote', [
      'env', `HOMEPORT_ADMIN_KEY=${phoneKey}`, process.execPath, CLI, 'whitelist', 'remove', `${lab.addresses.remoteRouterWan}/32`,
      '--via', `https://${lab.addresses.rendezvous}:8443/api/agents/home/`, '--ca', join(setup.dir, 'rv-certs', 'ca.pem'),
    ]).catch(() => undefined); // "no such entry" when it was not on it
  }

  test('a remote client outside the whitelist is closed; after allow-me through the rendezvous it downloads intact', async () => {
    await forgetRemote();
    const deniedFrom = agent.output().length;
    const redirect = await until('reachable redirect', 10_000, async () => {
      const answer = await curlFromRemote(lab, setup, go);
      return answer.code === '302' ? answer : undefined;
    });
    assert.match(redirect.location, new RegExp(`^https://${lab.addresses.homeRouterWan.replaceAll('.', '\\.')}:\\d+/movie\\.bin$`));
    assertCurrentRange(redirect.location);
    const refused = await curlFromRemote(lab, setup, go, ['-L']);
    assert.notEqual(refused.code, '200', 'the home port must refuse a client outside the whitelist');
    const remoteWan = lab.addresses.remoteRouterWan.replaceAll('.', '\\.');
    assert.match(agent.output().slice(deniedFrom), new RegExp(`denied[^\\n]*${remoteWan}|${remoteWan}[^\\n]*denied`));

    const addedFrom = agent.output().length;
    assert.match(await allowRemote(), new RegExp(`added ${remoteWan}/32`), 'the rendezvous saw the remote router\'s public address');
    assert.match(agent.output().slice(addedFrom), new RegExp(`whitelist entry added[^\\n]*${remoteWan}/32|${remoteWan}/32[^\\n]*whitelist entry added`));

    const fetched = await until('download after allow-me', 5_000, async () => {
      const answer = await curlFromRemote(lab, setup, go, ['-L']);
      return answer.code === '200' ? answer : undefined;
    });
    assert.equal(fetched.sha, MOVIE_SHA);
  });

  /** The redirect's port is one the home router allocates in its current boot: the punched port's mapping. */
  function assertCurrentRange(location: string): void {
    const port = Number(/:(\d+)\//.exec(location)![1]);
    const range = lab.portRange('home-router');
    assert.ok(port >= range.low && port <= range.high, `port ${port} from the router's range ${range.low}-${range.high}`);
  }

  async function addressChanges(): Promise<number> {
    const status = await runCli(['status', '--config', setup.agentConfig, '--json']);
    return (JSON.parse(status.stdout) as { addressChanges: number }).addressChanges;
  }

  async function recoverAfter(change: () => Promise<unknown>): Promise<{ ms: number; location: string }> {
    await allowRemote();
    const before = (await curlFromRemote(lab, setup, go)).location;
    const started = Date.now();
    await change();
    const location = await until('redirect to a new working address', 15_000, async () => {
      const answer = await curlFromRemote(lab, setup, go);
      return answer.code === '302' && answer.location !== before ? answer.location : undefined;
    });
    const ms = Date.now() - started;
    const fetched = await curlFromRemote(lab, setup, go, ['-L']);
    assert.equal(fetched.code, '200');
    assert.equal(fetched.sha, MOVIE_SHA);
    return { ms, location };
  }

  test('router reboot (new port allocation): the new mapping is found, the redirect follows, the download works', async (t) => {
    const changesBefore = await addressChanges();
    const from = agent.output().length;
    const { ms, location } = await recoverAfter(() => lab.rebootRouter('home-router'));
    t.diagnostic(`recovered in ${ms} ms with a 1 s heartbeat; now ${location}`);
    assertCurrentRange(location);
    assert.match(agent.output().slice(from), /public address changed/);
    const mapped = /^https:\/\/([^/]+)\//.exec(location)![1]!;
    const hookLines = await until('the onAddressChange hook ran with the new address', 5_000, async () => {
      const text = await readFile(setup.hookLog, 'utf8').catch(() => '');
      return text.includes(mapped) ? text.trim().split('\n') : undefined;
    });
    assert.ok(hookLines.length >= 2, 'the hook ran for the first address and for the new one');
    const status = await runCli(['status', '--config', setup.agentConfig]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`public address\\s+${mapped.replaceAll('.', '\\.')} since`));
    assert.match(status.stdout, new RegExp(`address changes\\s+${changesBefore + 1}`));
    const json = JSON.parse((await runCli(['status', '--config', setup.agentConfig, '--json'])).stdout) as { running: boolean; connected: boolean };
    assert.equal(json.running, true);
    assert.equal(json.connected, true);
  });

  test('new WAN address: the redirect follows it and the rendezvous expires the ghost connection', async (t) => {
    const newWan = lab.addresses.homeRouterWan === '198.51.100.3' ? '198.51.100.4' : '198.51.100.3';
    const from = rendezvous.output().length;
    const { ms, location } = await recoverAfter(() => lab.rebootRouter('home-router', { newWanAddress: newWan }));
    t.diagnostic(`recovered in ${ms} ms; now ${location}`);
    assert.match(location, new RegExp(`^https://${newWan.replaceAll('.', '\\.')}:`));
    await waitForOutput(rendezvous, /(ghost|replaced|dead|silent)/i, 5_000, from);
  });

  test('the rendezvous restarted: the agent re-registers by itself', async () => {
    await allowRemote();
    await rendezvous.stop();
    const from = agent.output().length;
    rendezvous = homeport(lab, 'wan', ['rendezvous', '--config', setup.rendezvousConfig]);
    await waitForOutput(rendezvous, /listening/);
    await waitForOutput(agent, /registered with the rendezvous/, 40_000, from);
    const fetched = await until('download after the restart', 10_000, async () => {
      const answer = await curlFromRemote(lab, setup, go, ['-L']);
      return answer.code === '200' ? answer : undefined;
    });
    assert.equal(fetched.sha, MOVIE_SHA);
  });
});

describe('port-restricted home: unreachable, said plainly', { skip }, () => {
  let lab: Lab;
  let setup: LabSetup;
  before(async () => {
    lab = await startLab({ home: 'prc', remote: 'prc' });
    ({ setup } = await startHomeport(lab, MOVIE, { allow: ['192.0.2.0/24'] }));
  });
  after(() => lab?.down());

  test('the reachability check says unreachable and the redirect answers 503 with the reason', async () => {
    const go = `https://${lab.addresses.rendezvous}:8443/go/home/movie.bin`;
    const answer = await until('503 with a reason', 15_000, async () => {
      const fetched = await curlFromRemote(lab, setup, go);
      return fetched.code === '503' && /timeout|timed out/i.test(fetched.body) ? fetched : undefined;
    });
    assert.match(answer.body, /unreachable/i);
    const status = await runCli(['status', '--config', setup.agentConfig]);
    assert.match(status.stdout, /^reachable\s+no \(timeout\)$/m);
  });
});
