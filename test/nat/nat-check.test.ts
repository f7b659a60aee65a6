import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { checkNat } from '../../src/nat/nat-check.js';
import { StunServer } from '../../src/nat/stun-server.js';
import { BINDING, decodeStun, encodeStun } from '../../src/nat/stun-message.js';
import { createLogger } from '../../src/common/logger.js';
import { freePort } from '../helpers/ports.js';

// Loopback has no NAT, so these check the client's tests and its distrust of bad servers; the NAT types
// themselves are checked through real Linux NAT in test/netlab/nat-check.test.ts.

const logger = createLogger({ level: 'silent' });

describe('nat-check against homeport\'s own STUN server on loopback', () => {
  let withAlternate: StunServer;
  let plain: StunServer;
  let ports: { alternate: number; plain: number };
  before(async () => {
    // RFC 5780 derives two more ports from these, so they are fixed rather than 0
    withAlternate = new StunServer({ listen: { host: '127.0.0.1', port: await freePort() }, alternate: { host: '127.0.0.2', port: await freePort() }, software: 'homeport test', logger });
    plain = new StunServer({ listen: { host: '127.0.0.1', port: 0 }, software: 'homeport test', logger });
    ports = { alternate: (await withAlternate.start()).port, plain: (await plain.start()).port };
  });
  after(async () => {
    await Promise.all([withAlternate?.close(), plain?.close()]);
  });

  test('with RFC 5780: no NAT, endpoint-independent both ways, the classic "Open Internet", TCP preserved', async () => {
    const report = await checkNat({ servers: [{ ip: '127.0.0.1', port: ports.alternate }], tcp: true });
    assert.equal(report.udp.nat, false);
    assert.equal(report.udp.classic, 'Open Internet');
    assert.equal(report.udp.mapping, 'endpoint-independent');
    assert.equal(report.udp.filtering, 'endpoint-independent');
    assert.equal(report.udp.external, report.udp.local);
    assert.ok(report.tcp && 'stable' in report.tcp, JSON.stringify(report.tcp));
    assert.deepEqual([report.tcp.stable, report.tcp.preserved], [true, true]);
    assert.match(report.advice.join('\n'), /direct TCP access will work/);
  });

  test('a plain RFC 5389 server gives "cannot tell" and names why', async () => {
    const report = await checkNat({ servers: [{ ip: '127.0.0.1', port: ports.plain }], tcp: false });
    // it still shows there is no NAT (the mapped address is the local one), so no mapping to vary
    assert.deepEqual([report.udp.classic, report.udp.nat, report.udp.filtering], ['cannot tell', false, 'cannot tell']);
    assert.match(report.udp.external ?? '', /^127\.0\.0\.1:\d+$/);
    assert.match(report.udp.notes.join('\n'), /no OTHER-ADDRESS/);
  });

  test('with a second server listed, a plain first one is followed by the RFC 5780 one', async () => {
    const report = await checkNat({ servers: [{ ip: '127.0.0.1', port: ports.plain }, { ip: '127.0.0.1', port: ports.alternate }], tcp: false });
    assert.equal(report.server, `127.0.0.1:${ports.alternate}`);
    assert.equal(report.udp.classic, 'Open Internet');
  });
});

describe('nat-check against a server that claims RFC 5780 but ignores CHANGE-REQUEST', () => {
  let liar: Socket;
  let port: number;
  before(async () => {
    // answers every Binding from where it was asked, yet claims an OTHER-ADDRESS: pystun3 calls this "Full Cone"
    liar = createSocket('udp4');
    liar.on('message', (packet, rinfo) => {
      const request = decodeStun(packet);
      if (!request.ok || request.value.class !== 'request') return;
      const client = { ip: rinfo.address, port: rinfo.port };
      liar.send(encodeStun({ method: BINDING, class: 'success', transactionId: request.value.transactionId,
        attributes: { xorMappedAddress: client, otherAddress: { ip: '127.0.0.2', port: port + 1 } } }), rinfo.port, rinfo.address);
    });
    await new Promise<void>((resolve) => liar.bind(0, '127.0.0.1', resolve));
    port = liar.address().port;
  });
  after(() => liar?.close());

  test('never a false "Full Cone" or "Open Internet": cannot tell, and the note says why', async () => {
    const report = await checkNat({ servers: [{ ip: '127.0.0.1', port }], tcp: false });
    assert.equal(report.udp.filtering, 'cannot tell');
    assert.equal(report.udp.classic, 'cannot tell');
    assert.match(report.udp.notes.join('\n'), /ignores CHANGE-REQUEST/);
  });
});

describe('nat-check when nothing answers', () => {
  test('Blocked, with the external address unknown', async () => {
    const silent = createSocket('udp4');
    await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
    try {
      const report = await checkNat({ servers: [{ ip: '127.0.0.1', port: silent.address().port }], tcp: false });
      assert.equal(report.udp.classic, 'Blocked');
      assert.equal(report.udp.external, null);
      assert.match(report.advice.join('\n'), /UDP is blocked/);
    } finally {
      silent.close();
    }
  });
});
