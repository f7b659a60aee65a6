import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { encodeProxyHeader } from '../../src/protocol/proxy-v2.js';
import { runCli, startCli, stopChild } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { missingTool } from '../helpers/tools.js';
import {
  agentPortOf, curl, sha256, startCurl, startRelayPair, startUpstream, waitForLine, writeMovie,
  type Movie, type RelayPair, type Upstream,
} from '../helpers/relay-pair.js';

/**
 * The relay through real programs: `homeport rendezvous` and `homeport agent` as child processes on
 * loopback, curl as the user. 127.0.0.2 is the whitelisted user, 127.0.0.3 one outside the whitelist
 * (127.0.0.1 is where the agent's control connection reaches the rendezvous, which the gate admits for
 * the reachability check, so it cannot play a user here).
 */

const skip = missingTool('curl');
const ALLOWED = '127.0.0.2';
const DENIED = '127.0.0.3';

type Started = Awaited<ReturnType<typeof startCli>>;

/** A TLS connection to the relay from `localAddress`; resolves when it is secure, rejects when it closes first. */
function tlsThroughRelay(port: number, ca: string, localAddress = ALLOWED): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    // tls.connect's options type has no localAddress: the TCP socket is bound first, then wrapped
    const tcp = netConnect({ host: '127.0.0.1', port, localAddress });
    const socket = tlsConnect({ socket: tcp, host: '127.0.0.1', ca, ALPNProtocols: ['http/1.1'] });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the TLS handshake')));
  });
}

/** One HTTP/1.1 request on an open TLS socket; resolves with the status line. */
function statusLineOf(socket: TLSSocket, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end >= 0) {
        socket.off('data', onData);
        resolve(text.slice(0, end));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('relay, mode = "relay": users reach the agent through the rendezvous, TLS ends at home', { skip }, () => {
  let movie: Movie;
  let upstream: Upstream;
  let pair: RelayPair;
  let relayPort: number;
  let restarted: Started | undefined;

  before(async () => {
    movie = await writeMovie(4 * 1024 * 1024);
    upstream = await startUpstream(movie.file);
    relayPort = await freePort();
    pair = await startRelayPair({
      prefix: 'hp-relay-test-',
      agent: { allow: `["${ALLOWED}/32"]`, target: `http://127.0.0.1:${upstream.port}` },
      agentEntryLines: `relay = "127.0.0.1:${relayPort}"\nmode = "relay"\nrelayMaxConnections = 2`,
    });
  });
  after(async () => {
    if (restarted) await stopChild(restarted.child);
    await pair?.stop();
    await upstream?.close();
    await movie?.remove();
  });

  test('/go/ redirects to the relay; the download, a Range request, the access log and X-Forwarded-For all carry the real client', async () => {
    const go = `https://127.0.0.1:${pair.ports.http}/go/home/movie.bin`;
    const relayUrl = `https://127.0.0.1:${relayPort}/movie.bin`;
    const redirect = await curl(['--cacert', pair.caBundle, '--interface', ALLOWED, go], { write: '%{http_code} %{redirect_url}' });
    assert.equal(redirect.exitCode, 0, redirect.stderr);
    assert.equal(redirect.info, `302 ${relayUrl}`, 'mode = "relay": /go/ sends the user to the relay port');

    const download = await curl(['-L', '--cacert', pair.caBundle, '--interface', ALLOWED, go]);
    assert.equal(download.exitCode, 0, download.stderr);
    assert.equal(download.info, `200 1 ${relayUrl}`);
    assert.equal(download.body.length, movie.bytes.length);
    assert.equal(sha256(download.body), movie.sha, 'the file arrives whole through the relay');

    const range = await curl(['-r', '1000-1999', '--cacert', pair.agentCa, '--interface', ALLOWED, relayUrl]);
    assert.equal(range.exitCode, 0, range.stderr);
    assert.equal(range.info.split(' ')[0], '206');
    assert.ok(range.body.equals(movie.bytes.subarray(1000, 2000)), 'bytes 1000-1999 of the file');

    // the access lines: the gate and the log see the user, never the rendezvous (127.0.0.1)
    await waitForLine(pair.agent.output, /"path":"\/movie\.bin"[^\n]*"status":206/);
    const access = pair.agent.output().split('\n').filter((line) => line.includes('"path":"/movie.bin"'));
    assert.equal(access.length, 2, `one access line per request:\n${access.join('\n')}`);
    for (const line of access) assert.match(line, /"ip":"127\.0\.0\.2"/);

    // a spoofed X-Forwarded-For from the client is replaced by the real address from the PROXY header
    const xff = await curl(['--cacert', pair.agentCa, '--interface', ALLOWED, '-H', 'X-Forwarded-For: 203.0.113.66', `https://127.0.0.1:${relayPort}/xff`]);
    assert.equal(xff.exitCode, 0, xff.stderr);
    assert.equal(xff.body.toString(), 'x-forwarded-for: 127.0.0.2\n');
    assert.deepEqual(upstream.forwardedFor, ['127.0.0.2']);
  });

  test('a client outside the whitelist is refused through the relay, by its real address', async () => {
    const from = pair.agent.output().length;
    const refused = await curl(['--cacert', pair.agentCa, '--interface', DENIED, `https://127.0.0.1:${relayPort}/movie.bin`], { timeoutMs: 10_000 });
    assert.notEqual(refused.exitCode, 0, 'no TLS handshake, so curl fails');
    assert.equal(refused.info.split(' ')[0], '000', 'no HTTP answer at all');
    assert.equal(refused.body.length, 0);
    await waitForLine(pair.agent.output, /"client":"127\.0\.0\.3"[^\n]*"msg":"connection denied/, 5_000, from);
    assert.doesNotMatch(pair.agent.output().slice(from), /"path":"\/movie\.bin"/, 'no request reached the router');
  });

  test('homeport status shows the relay path', async () => {
    await waitForLine(pair.agent.output, /"msg":"reachability check"/);
    let text = '';
    const deadline = Date.now() + 5_000;
    while (Date.now() < deadline) {
      const status = await runCli(['status', '--config', pair.agentConfig]);
      text = status.stdout;
      if (status.code === 0 && /^path\s+relay \(/m.test(text)) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.match(text, /^path {2,}relay \(the rendezvous relays this agent: mode = "relay"\)$/m, text);
  });

  test('relayMaxConnections = 2: a third connection is closed before any TLS byte, and a freed slot is usable again', async () => {
    const from = pair.rendezvous.output().length;
    const ca = readFileSync(pair.agentCa, 'utf8');
    const held: TLSSocket[] = [];
    try {
      held.push(await tlsThroughRelay(relayPort, ca), await tlsThroughRelay(relayPort, ca));
      for (const socket of held) assert.equal(await statusLineOf(socket, '/'), 'HTTP/1.1 200 OK', 'each held connection carries requests');

      const started = Date.now();
      await assert.rejects(tlsThroughRelay(relayPort, ca), (error: NodeJS.ErrnoException) => {
        assert.ok(error.code === 'ECONNRESET' || /closed before the TLS handshake/.test(error.message), String(error));
        return true;
      });
      assert.ok(Date.now() - started < 1_000, `the third connection is closed at once, not after ${Date.now() - started} ms`);
      await waitForLine(pair.rendezvous.output, /relay refused a connection to home: 2 relayed connections open, relayMaxConnections is 2/, 5_000, from);

      held.shift()!.destroy();
      // the relay frees the slot when the user's socket closes: retry briefly rather than guess how long that takes
      let again: TLSSocket | undefined;
      const deadline = Date.now() + 5_000;
      while (!again && Date.now() < deadline) {
        again = await tlsThroughRelay(relayPort, ca).catch(() => undefined);
        if (!again) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.ok(again, 'a new connection works once one of the two is closed');
      held.push(again);
      assert.equal(await statusLineOf(again, '/'), 'HTTP/1.1 200 OK');
    } finally {
      for (const socket of held) socket.destroy();
    }
  });

  test('an agent killed mid-download: curl fails within 3 s, the rendezvous stays up, and the relay works again after a restart', async () => {
    // let the slots of the previous test free up first (their sockets were just destroyed)
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Slow at the source (200 kB/s), curl reading as fast as it comes. With curl --limit-rate instead, curl's
    // own socket holds ~2 MB the kernel already received (its window grew in curl's first burst), which curl
    // reads at 200 kB/s before it sees the reset: ~10 s that measure curl's buffer, not the relay.
    const slow = startCurl(['--cacert', pair.agentCa, '--interface', ALLOWED, `https://127.0.0.1:${relayPort}/slow`]);
    let cut;
    let killedAt;
    try {
      const deadline = Date.now() + 5_000;
      while (slow.received() < 100_000 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.ok(slow.received() >= 100_000, 'the slow download is under way');
      killedAt = Date.now();
      pair.agent.child.kill('SIGKILL');
      cut = await Promise.race([slow.done, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 3_000))]);
    } finally {
      if (slow.child.exitCode === null && slow.child.signalCode === null) slow.child.kill('SIGKILL');
    }
    assert.ok(cut, 'curl still running 3 s after the agent was killed');
    const cutMs = Date.now() - killedAt;
    assert.notEqual(cut.exitCode, 0, `curl must report an error, not a complete download (${cut.stderr})`);
    assert.ok(cut.body.length < movie.bytes.length, 'the download was cut short');
    assert.ok(cutMs < 3_000, `curl ended ${cutMs} ms after the kill`);

    assert.equal(pair.rendezvous.child.exitCode, null, 'the rendezvous keeps running');
    assert.equal(pair.rendezvous.child.signalCode, null);
    const health = await curl(['--cacert', pair.rendezvousCa, `https://127.0.0.1:${pair.ports.http}/healthz`]);
    assert.equal(health.exitCode, 0, health.stderr);
    assert.equal(health.info.split(' ')[0], '200');
    assert.equal(health.body.toString(), 'ok\n');

    restarted = await startCli(['agent', '--config', pair.agentConfig], /"msg":"registered with the rendezvous"/);
    const again = await curl(['--cacert', pair.agentCa, '--interface', ALLOWED, `https://127.0.0.1:${relayPort}/movie.bin`]);
    assert.equal(again.exitCode, 0, again.stderr);
    assert.equal(again.info.split(' ')[0], '200');
    assert.equal(sha256(again.body), movie.sha, 'the restarted agent opened new work connections and the relay carries the file again');
  });
});

describe('relay beside a reachable direct path: mode = "auto", relayRate', { skip }, () => {
  let movie: Movie;
  let upstream: Upstream;
  let pair: RelayPair;
  let relayPort: number;
  let agentPort: number;

  before(async () => {
    movie = await writeMovie(3_000_000);
    upstream = await startUpstream(movie.file);
    relayPort = await freePort();
    pair = await startRelayPair({
      prefix: 'hp-relay-auto-test-',
      agent: { allow: `["${ALLOWED}/32"]`, target: `http://127.0.0.1:${upstream.port}` },
      agentEntryLines: `relay = "127.0.0.1:${relayPort}"\nmode = "auto"\nrelayRate = "1MB/s"`,
    });
    agentPort = agentPortOf(pair.agent.output());
  });
  after(async () => {
    await pair?.stop();
    await upstream?.close();
    await movie?.remove();
  });

  test('mode = "auto" with the punched port reachable: /go/ sends users to the agent directly, not to the relay', async () => {
    await waitForLine(pair.agent.output, /"reachable":true[^\n]*"msg":"reachability check"/);
    const go = `https://127.0.0.1:${pair.ports.http}/go/home/movie.bin`;
    const redirect = await curl(['--cacert', pair.caBundle, '--interface', ALLOWED, go], { write: '%{http_code} %{redirect_url}' });
    assert.equal(redirect.exitCode, 0, redirect.stderr);
    assert.equal(redirect.info, `302 https://127.0.0.1:${agentPort}/movie.bin`);
    assert.notEqual(agentPort, relayPort);
  });

  test('relayRate = "1MB/s": 3 MB through the relay takes at least 2 s; directly it is much faster', async () => {
    const relayed = await curl(['--cacert', pair.agentCa, '--interface', ALLOWED, `https://127.0.0.1:${relayPort}/movie.bin`]);
    assert.equal(relayed.exitCode, 0, relayed.stderr);
    assert.equal(sha256(relayed.body), movie.sha);
    const direct = await curl(['--cacert', pair.agentCa, '--interface', ALLOWED, `https://127.0.0.1:${agentPort}/movie.bin`]);
    assert.equal(direct.exitCode, 0, direct.stderr);
    assert.equal(sha256(direct.body), movie.sha);
    assert.ok(relayed.ms >= 2_000, `3 MB at 1 MB/s took only ${relayed.ms} ms`);
    assert.ok(direct.ms * 2 < relayed.ms, `direct ${direct.ms} ms should be far below relayed ${relayed.ms} ms`);
  });

  test('a PROXY header sent straight to the agent\'s public port is not honoured: the gate sees the sender', async () => {
    const from = pair.agent.output().length;
    const forged = encodeProxyHeader({ source: { ip: ALLOWED, port: 40000 }, destination: { ip: '127.0.0.1', port: agentPort } }, randomBytes(32));
    const outcome = await new Promise<{ received: number; error?: string }>((resolve) => {
      let received = 0;
      let error: string | undefined;
      const socket: Socket = netConnect({ host: '127.0.0.1', port: agentPort, localAddress: DENIED }, () => socket.write(forged));
      socket.on('data', (chunk: Buffer) => { received += chunk.length; });
      socket.on('error', (caught: NodeJS.ErrnoException) => { error = caught.code ?? caught.message; });
      socket.on('close', () => resolve({ received, ...(error ? { error } : {}) }));
      setTimeout(() => socket.destroy(new Error('still open after 3 s')), 3_000).unref();
    });
    assert.notEqual(outcome.error, 'still open after 3 s', 'the connection is dropped at once');
    assert.equal(outcome.received, 0, 'not one byte back: no TLS, no HTTP');
    await waitForLine(pair.agent.output, new RegExp(`"client":"${escape(DENIED)}"[^\\n]*"msg":"connection denied`), 5_000, from);
  });
});
