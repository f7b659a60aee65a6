import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, startCli, stopChild } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { missingTool } from '../helpers/tools.js';
import {
  agentPortOf, curl, sha256, startRelayPair, startUpstream, waitForLine, writeMovie,
  type Movie, type RelayPair, type Upstream,
} from '../helpers/relay-pair.js';

/**
 * `homeport connect home --rendezvous 127.0.0.1:<control> --listen 127.0.0.1:<port>` as a child process in
 * front of a real rendezvous and agent on loopback, with curl as the browser. The agent's self-signed
 * certificate names localhost, so curl checks it against the agent's CA: TLS ends at the agent whatever
 * path the bytes take.
 */

const skip = missingTool('curl');

type Started = Awaited<ReturnType<typeof startCli>>;

function startConnectCli(control: number, listen: number): Promise<Started> {
  return startCli(['connect', 'home', '--rendezvous', `127.0.0.1:${control}`, '--listen', `127.0.0.1:${listen}`], /listening on 127\.0\.0\.1:\d+ for home/);
}

/** What the connect process printed since it started, for failure messages. */
const tail = (started: Started | undefined): string => started?.output().slice(-2000) ?? '(not started)';

interface Setup {
  movie: Movie;
  upstream: Upstream;
  pair: RelayPair;
  relayPort: number;
}

async function setUp(prefix: string, allow: string, mode: string): Promise<Setup> {
  const movie = await writeMovie(2 * 1024 * 1024);
  const upstream = await startUpstream(movie.file);
  const relayPort = await freePort();
  try {
    const pair = await startRelayPair({
      prefix,
      agent: { allow, target: `http://127.0.0.1:${upstream.port}` },
      agentEntryLines: `relay = "127.0.0.1:${relayPort}"\nmode = "${mode}"`,
    });
    return { movie, upstream, pair, relayPort };
  } catch (error) {
    await upstream.close();
    await movie.remove();
    throw error;
  }
}

async function tearDown(setup: Setup | undefined, connect: Started | undefined): Promise<void> {
  if (connect) await stopChild(connect.child);
  await setup?.pair.stop();
  await setup?.upstream.close();
  await setup?.movie.remove();
}

describe('homeport connect, mode = "auto", the agent reachable on loopback', { skip }, () => {
  let setup: Setup;
  let connect: Started | undefined;

  before(async () => {
    setup = await setUp('hp-connect-direct-', '["127.0.0.1/32"]', 'auto');
  });
  after(() => tearDown(setup, connect));

  test('goes direct: curl through the local port gets the file, and connect prints "path to home: direct"', async () => {
    const { pair, movie } = setup;
    // until the check passes, the rendezvous offers no direct address (it would offer the relay instead)
    await waitForLine(pair.agent.output, /"reachable":true[^\n]*"msg":"reachability check"/);
    const listen = await freePort();
    connect = await startConnectCli(pair.ports.control, listen);
    const download = await curl(['--cacert', pair.agentCa, `https://localhost:${listen}/movie.bin`]);
    assert.equal(download.exitCode, 0, `${download.stderr}\n${tail(connect)}`);
    assert.equal(download.info.split(' ')[0], '200');
    assert.equal(sha256(download.body), movie.sha);
    const agentPort = agentPortOf(pair.agent.output());
    assert.match(connect.output(), new RegExp(`path to home: direct \\(127\\.0\\.0\\.1:${agentPort}\\)`));
    assert.doesNotMatch(connect.output(), /path to home: (relay|punched)/);
    assert.doesNotMatch(pair.rendezvous.output(), /punch requested/, 'a working direct path needs no punch');
  });
});

describe('homeport connect, mode = "relay", the agent declines to punch toward the client', { skip }, () => {
  let setup: Setup;
  let connect: Started | undefined;

  before(async () => {
    // 127.0.0.1 (where connect's route request comes from) is not in the whitelist, so the agent does not
    // answer the punch; the relayed connection is still admitted because on loopback the client's address is
    // also the one the agent's control connection reached the rendezvous at, which the gate lets in
    setup = await setUp('hp-connect-relay-', '["127.0.0.2/32"]', 'relay');
  });
  after(() => tearDown(setup, connect));

  test('falls back to the relay, and the next connection goes straight there without punching again', async () => {
    const { pair, movie, relayPort } = setup;
    const listen = await freePort();
    connect = await startConnectCli(pair.ports.control, listen);

    const first = await curl(['--cacert', pair.agentCa, `https://localhost:${listen}/movie.bin`]);
    assert.equal(first.exitCode, 0, `${first.stderr}\n${tail(connect)}`);
    assert.equal(first.info.split(' ')[0], '200');
    assert.equal(sha256(first.body), movie.sha);
    assert.match(connect.output(), new RegExp(`path to home: relay \\(127\\.0\\.0\\.1:${relayPort}\\)`));
    assert.doesNotMatch(connect.output(), /path to home: (direct|punched)/);
    await waitForLine(pair.agent.output, /"msg":"punch not answered: the client is not in the whitelist"/, 2_000);

    const second = await curl(['--cacert', pair.agentCa, `https://localhost:${listen}/movie.bin`]);
    assert.equal(second.exitCode, 0, `${second.stderr}\n${tail(connect)}`);
    assert.equal(sha256(second.body), movie.sha);
    assert.ok(second.ms < 2_000, `the second connection took ${second.ms} ms: it should skip the failed punch (the first took ${first.ms} ms)`);
    assert.equal(pair.rendezvous.output().match(/punch requested for home/g)?.length, 1, 'one punch asked for, for the first connection only');

    await stopChild(connect.child);
    assert.match(connect.output(), /stopped; connections: 0 direct, 0 punched, 2 relayed/);
  });
});

describe('homeport connect usage errors', () => {
  const cases: [string, string[], RegExp][] = [
    ['no agent name', ['--rendezvous', '127.0.0.1:7000'], /name one agent: homeport connect <agent>/],
    ['a bad agent name', ['Home!', '--rendezvous', '127.0.0.1:7000'], /"Home!" is not an agent name/],
    ['no --rendezvous', ['home'], /--rendezvous <host\[:port\]> is required/],
    ['a bad --rendezvous', ['home', '--rendezvous', '127.0.0.1:99999'], /--rendezvous "127\.0\.0\.1:99999": port 99999 is outside/],
    ['a bad --listen', ['home', '--rendezvous', '127.0.0.1:7000', '--listen', 'nonsense'], /--listen "nonsense" is not host:port/],
  ];
  for (const [name, args, message] of cases) {
    test(`${name}: exit code 2 and one line saying what is wrong`, async () => {
      const run = await runCli(['connect', ...args]);
      assert.equal(run.code, 2, run.stderr);
      assert.equal(run.stdout, '');
      const lines = run.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, run.stderr);
      assert.match(lines[0]!, /^homeport connect: /);
      assert.match(lines[0]!, message);
    });
  }
});
