import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/common/logger.js';
import { StunServer } from '../../src/nat/stun-server.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

describe('homeport nat-check', () => {
  let server: StunServer;
  let port: number;
  before(async () => {
    server = new StunServer({ listen: { host: '127.0.0.1', port: await freePort() }, alternate: { host: '127.0.0.2', port: await freePort() }, software: 'homeport test', logger: createLogger({ level: 'silent' }) });
    port = (await server.start()).port;
  });
  after(() => server?.close());

  test('--json prints one object with the RFC 5780 result, TCP and the advice', async () => {
    const run = await runCli(['nat-check', '--stun', `127.0.0.1:${port}`, '--tcp', '--json']);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as Record<string, any>;
    assert.equal(report.server, `127.0.0.1:${port}`);
    assert.deepEqual([report.udp.classic, report.udp.nat, report.udp.mapping, report.udp.filtering, report.udp.hairpinning], ['Open Internet', false, 'endpoint-independent', 'endpoint-independent', null]);
    assert.match(report.udp.external, /^127\.0\.0\.1:\d+$/);
    assert.deepEqual([report.tcp.stable, report.tcp.preserved, report.tcp.mapped.length], [true, true, 2]);
    assert.ok(Array.isArray(report.advice) && report.advice.length > 0);
    assert.ok(report.elapsedMs < 5_000, `took ${report.elapsedMs} ms`);
  });

  test('the text report names the type, the behaviour and what it means', async () => {
    const run = await runCli(['nat-check', '--stun', `127.0.0.1:${port}`]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^NAT check against 127\.0\.0\.1:\d+ \(\d+\.\d s\)$/m);
    assert.match(run.stdout, /NAT type +Open Internet \(no NAT\)/);
    assert.match(run.stdout, /filtering +endpoint-independent/);
    assert.match(run.stdout, /What this means:\n  - direct TCP access will work/);
  });

  test('usage errors exit 2 with one line naming the flag', async () => {
    const rows: Array<[string[], RegExp]> = [
      [['nat-check', '--stun', 'not a host!'], /--stun "not a host!:3478": .*is not a host name/],
      [['nat-check', '--stun', '127.0.0.1:99999'], /--stun/],
      [['nat-check', '--udp'], /Unknown option '--udp'/],
    ];
    for (const [args, message] of rows) {
      const run = await runCli(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message);
      assert.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
    }
  });

  test('no server answering exits 1 and says UDP is blocked', async () => {
    const silent = await freePort();
    const run = await runCli(['nat-check', '--stun', `127.0.0.1:${silent}`]);
    assert.equal(run.code, 1, run.stdout);
    assert.match(run.stdout, /NAT type +Blocked/);
    assert.match(run.stdout, /UDP is blocked/);
  });
});
