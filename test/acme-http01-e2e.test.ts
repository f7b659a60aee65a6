import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startAgent, type RunningAgent } from '../src/agent/agent.js';
import { loadAgentConfig } from '../src/config/agent.js';
import { loadRendezvousConfig } from '../src/config/rendezvous.js';
import { startRendezvous, type RunningRendezvous } from '../src/rendezvous/rendezvous.js';
import { captureLogs, type LogLine } from './helpers/logs.js';
import { writeLoopbackConfigs, type LoopbackConfigs, type LoopbackOptions } from './helpers/loopback-pair.js';
import { pebbleMissing, startPebble, type Pebble } from './helpers/pebble.js';
import { freePort } from './helpers/ports.js';
import { missingTool } from './helpers/tools.js';
import { waitFor } from './helpers/wait.js';

/**
 * HTTP-01 through the rendezvous, on loopback: a real rendezvous with acmeHttp and a real agent in this
 * process; the agent hands challenges over the control channel and the rendezvous answers them on its
 * plain-HTTP port, for the agent's own names only. Then Pebble issues the agent a certificate that way.
 */

const HOST = 'home.example.com';
const RV_HOST = 'rv.example.com';
const TOKEN = 'LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0';
const KEY_AUTH = `${TOKEN}.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI`;
const run = promisify(execFile);

interface Pair {
  configs: LoopbackConfigs;
  rendezvous: RunningRendezvous;
  agent: RunningAgent;
  rendezvousLogs: LogLine[];
  stop(): Promise<void>;
}

/** The loopback configs, with both programs started here; resolves once the agent is registered. */
async function startPair(options: LoopbackOptions): Promise<Pair> {
  const configs = await writeLoopbackConfigs(options);
  const { logger, lines: rendezvousLogs } = captureLogs();
  const rendezvous = await startRendezvous(await loadRendezvousConfig(configs.rendezvousConfig), logger);
  const agent = await startAgent(await loadAgentConfig(configs.agentConfig), captureLogs().logger);
  await waitFor('the agent is registered', () => rendezvous.registry.get('home')?.online === true, 10_000);
  return {
    configs, rendezvous, agent, rendezvousLogs,
    stop: async () => {
      await agent.close();
      await rendezvous.close();
      await rm(configs.dir, { recursive: true, force: true });
    },
  };
}

/** What the CA would get: curl with the name in Host, to the rendezvous's acmeHttp port; "<status> <body>". */
async function fetchChallenge(port: number, host: string, token = TOKEN): Promise<string> {
  const { stdout } = await run('curl', ['-sS', '-H', `Host: ${host}`, '-w', ' %{http_code}', `http://127.0.0.1:${port}/.well-known/acme-challenge/${token}`]);
  const at = stdout.lastIndexOf(' ');
  return `${stdout.slice(at + 1)} ${stdout.slice(0, at)}`;
}

describe('HTTP-01 through the rendezvous (loopback)', { skip: missingTool('curl') }, () => {
  let pair: Pair;
  before(async () => {
    pair = await startPair({
      prefix: 'hp-http01-',
      rendezvousLines: 'acmeHttp = "127.0.0.1:0"',
      agentEntryLines: `acmeHostnames = ["${HOST}"]`,
    });
  });
  after(() => pair?.stop());

  test('the agent sets a token and the rendezvous answers it for its Host only; unset removes it', async () => {
    const port = pair.rendezvous.acmeHttpPort!;
    assert.ok(port > 0);
    assert.equal(await fetchChallenge(port, HOST), '404 not found\n', 'nothing before the agent sets it');
    await pair.agent.link!.http01.set(HOST, TOKEN, KEY_AUTH);
    assert.equal(await fetchChallenge(port, HOST), `200 ${KEY_AUTH}`);
    assert.equal(await fetchChallenge(port, `${HOST}:80`), `200 ${KEY_AUTH}`, 'with the port in Host, as curl sends for :80');
    assert.equal(await fetchChallenge(port, 'other.example.com'), '404 not found\n', 'another Host');
    assert.equal(await fetchChallenge(port, HOST, 'x'.repeat(43)), '404 not found\n', 'another token');
    await pair.agent.link!.http01.unset(HOST, TOKEN);
    assert.equal(await fetchChallenge(port, HOST), '404 not found\n', 'gone after unset');
  });

  test('a name not in the agent\'s acmeHostnames is refused with the reason, logged, and never answered', async () => {
    await assert.rejects(pair.agent.link!.http01.set('bank.example.com', TOKEN, KEY_AUTH), {
      message: 'refused by the rendezvous: bank.example.com is not in this agent\'s acmeHostnames in the rendezvous config; only its operator can add it there',
    });
    const logged = pair.rendezvousLogs.find((line) => line.msg === 'http-01 challenge refused: not one of the agent\'s acmeHostnames');
    assert.deepEqual({ agent: logged?.agent, hostname: logged?.hostname, op: logged?.op, level: logged?.level }, { agent: 'home', hostname: 'bank.example.com', op: 'set', level: 40 });
    assert.equal(await fetchChallenge(pair.rendezvous.acmeHttpPort!, 'bank.example.com'), '404 not found\n');
  });
});

describe('Pebble issues the agent and the rendezvous certificates by HTTP-01 on the rendezvous\'s acmeHttp (loopback only)', { skip: pebbleMissing() ?? missingTool('curl') }, () => {
  let pebble: Pebble;
  let pair: Pair;
  let upstream: Server;
  before(async () => {
    upstream = createServer((_req, res) => res.end('hello from home\n'));
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    // Pebble fetches http://home.example.com:<httpPort>/...; challtestsrv resolves every name to 127.0.0.1
    const acmeHttpPort = await freePort();
    pebble = await startPebble({ httpPort: acmeHttpPort });
    pair = await startPair({
      prefix: 'hp-http01-pebble-',
      rendezvousLines: `acmeHttp = "127.0.0.1:${acmeHttpPort}"`,
      agentEntryLines: `acmeHostnames = ["${HOST}"]`,
      rendezvousTls: `mode = "acme"\n[tls.acme]\ndirectory = "${pebble.directory}"\nhostnames = ["${RV_HOST}"]\nchallenge = "http-01"\ndirectoryCa = "${pebble.listenerCaFile}"\n`,
      agent: {
        target: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
        tls: `mode = "acme"\n[tls.acme]\ndirectory = "${pebble.directory}"\nhostnames = ["${HOST}"]\nchallenge = "http-01"\ndirectoryCa = "${pebble.listenerCaFile}"\n`,
      },
    });
  });
  after(async () => {
    await pair?.stop();
    await pebble?.stop();
    upstream?.close();
  });

  test('the served chain verifies against Pebble\'s root with curl', { timeout: 60_000 }, async () => {
    const certificates = pair.agent.certificates;
    await waitFor('the certificate from Pebble', () => /Pebble/.test(certificates.info().issuer), 45_000);
    const port = pair.agent.port;
    const { stdout } = await run('curl', ['-fsS', '--cacert', pebble.rootFile, '--resolve', `${HOST}:${port}:127.0.0.1`, `https://${HOST}:${port}/`]);
    assert.equal(stdout, 'hello from home\n');
    assert.deepEqual(certificates.info().names, [HOST]);
    // the new fingerprint is registered, or the reachability check would find the "wrong certificate"
    await waitFor('the new fingerprint at the rendezvous', () => pair.rendezvous.registry.get('home')?.fingerprint === certificates.leafFingerprint256(), 10_000);
    assert.ok(pair.rendezvousLogs.some((line) => line.msg === 'http-01 challenge answered' && line.hostname === HOST), 'Pebble asked the rendezvous');
  });

  test('the rendezvous gets its own certificate the same way; its HTTPS port verifies with curl', { timeout: 60_000 }, async () => {
    const certificates = pair.rendezvous.certificates;
    await waitFor('the rendezvous\'s certificate from Pebble', () => /Pebble/.test(certificates.info().issuer), 45_000);
    const port = pair.rendezvous.httpPort;
    const { stdout } = await run('curl', ['-fsS', '--cacert', pebble.rootFile, '--resolve', `${RV_HOST}:${port}:127.0.0.1`, `https://${RV_HOST}:${port}/healthz`]);
    assert.equal(stdout, 'ok\n');
    assert.ok(pair.rendezvousLogs.some((line) => line.msg === 'http-01 challenge answered' && line.hostname === RV_HOST));
  });
});
