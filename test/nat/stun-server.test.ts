import assert from 'node:assert/strict';
import type { Socket as DatagramSocket } from 'node:dgram';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { StunServer, type StunLimits } from '../../src/nat/stun-server.js';
import { encodeStun, newTransactionId, type StunAddress, type StunAttributes } from '../../src/nat/stun-message.js';
import { captureLogs } from '../helpers/logs.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { bindingBytes, withRawAttribute } from '../helpers/stun-bytes.js';
import { tcpClient, tcpMessages, udpClient, udpExchange } from '../helpers/stun-client.js';

/**
 * The STUN server on loopback: A1 = 127.0.0.1 and A2 = 127.0.0.2 (Linux routes all of 127/8 to lo), the
 * clients plain dgram and net sockets on 127.0.0.1.
 */

const SOFTWARE = 'homeport test';

async function startServer(options: { alternate: boolean; limits?: Partial<StunLimits> }): Promise<{ server: StunServer; a1p1: StunAddress; a2p2: StunAddress }> {
  const [p1, p2] = options.alternate ? [await freePort(), await freePort()] : [0, 0];
  const server = new StunServer({
    listen: { host: '127.0.0.1', port: p1 },
    ...(options.alternate ? { alternate: { host: '127.0.0.2', port: p2 } } : {}),
    software: SOFTWARE,
    logger: captureLogs().logger,
    ...(options.limits ? { limits: options.limits } : {}),
  });
  const ports = await server.start();
  return { server, a1p1: { ip: '127.0.0.1', port: ports.port }, a2p2: { ip: '127.0.0.2', port: ports.alternatePort ?? 0 } };
}

function local(socket: DatagramSocket): StunAddress {
  const { address, port } = socket.address();
  return { ip: address, port };
}

describe('STUN server with an alternate address (RFC 5780)', { timeout: 20_000 }, () => {
  let server: StunServer;
  let a1p1: StunAddress;
  let a2p2: StunAddress;
  let client: DatagramSocket;
  const a1p2 = (): StunAddress => ({ ip: a1p1.ip, port: a2p2.port });
  const a2p1 = (): StunAddress => ({ ip: a2p2.ip, port: a1p1.port });

  before(async () => {
    ({ server, a1p1, a2p2 } = await startServer({ alternate: true }));
    client = await udpClient();
  });
  after(async () => {
    client.close();
    await server.close();
  });

  test('a Binding request over UDP: the client\'s own address, RESPONSE-ORIGIN and OTHER-ADDRESS', async () => {
    const answer = await udpExchange(client, a1p1, bindingBytes());
    assert.ok(answer, 'answered');
    assert.deepEqual(answer.from, a1p1);
    assert.equal(answer.message.class, 'success');
    assert.deepEqual(answer.message.attributes, {
      xorMappedAddress: local(client),
      mappedAddress: local(client),
      responseOrigin: a1p1,
      otherAddress: a2p2,
      changedAddress: a2p2,
      software: SOFTWARE,
    });
    assert.equal(answer.message.fingerprint, true);
  });

  test('CHANGE-REQUEST: the response comes from the other IP, the other port, or both', async () => {
    const cases: [change: { changeIp: boolean; changePort: boolean }, from: StunAddress][] = [
      [{ changeIp: false, changePort: false }, a1p1],
      [{ changeIp: true, changePort: false }, a2p1()],
      [{ changeIp: false, changePort: true }, a1p2()],
      [{ changeIp: true, changePort: true }, a2p2],
    ];
    for (const [changeRequest, from] of cases) {
      const answer = await udpExchange(client, a1p1, bindingBytes({ changeRequest }));
      assert.ok(answer, JSON.stringify(changeRequest));
      assert.deepEqual(answer.from, from, JSON.stringify(changeRequest));
      assert.deepEqual(answer.message.attributes.responseOrigin, from, 'RESPONSE-ORIGIN names the socket it came from');
      assert.deepEqual(answer.message.attributes.otherAddress, a2p2, 'OTHER-ADDRESS whatever the flags');
      assert.deepEqual(answer.message.attributes.xorMappedAddress, local(client));
    }
  });

  test('every socket answers what reaches it, changes taken relative to it', async () => {
    const cases: [to: StunAddress, attributes: StunAttributes, from: StunAddress, other: StunAddress][] = [
      [a2p2, {}, a2p2, a1p1],
      [a2p2, { changeRequest: { changeIp: true, changePort: false } }, a1p2(), a1p1],
      [a1p2(), { changeRequest: { changeIp: false, changePort: true } }, a1p1, a2p1()],
      [a2p1(), { changeRequest: { changeIp: true, changePort: true } }, a1p2(), a1p2()],
    ];
    for (const [to, attributes, from, other] of cases) {
      const answer = await udpExchange(client, to, bindingBytes(attributes));
      assert.ok(answer, `to ${to.ip}:${to.port}`);
      assert.deepEqual([answer.from, answer.message.attributes.otherAddress], [from, other], `to ${to.ip}:${to.port} ${JSON.stringify(attributes)}`);
    }
  });

  test('an unknown comprehension-required attribute gets 420 listing it', async () => {
    const answer = await udpExchange(client, a1p1, withRawAttribute(bindingBytes(), 0x0031, Buffer.alloc(4)));
    assert.ok(answer);
    assert.equal(answer.message.class, 'error');
    assert.deepEqual(answer.message.attributes.errorCode?.code, 420);
    assert.deepEqual(answer.message.attributes.unknownAttributes, [0x0031]);
  });

  test('garbage datagrams are dropped and the server answers on', async () => {
    for (const garbage of [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(20, 0xff), Buffer.alloc(1400, 0), bindingBytes().subarray(0, 19)]) {
      assert.equal(await udpExchange(client, a1p1, garbage, 100), undefined);
    }
    assert.ok(await udpExchange(client, a1p1, bindingBytes()), 'a good request after the garbage');
  });

  test('over TCP: back-to-back requests, however cut, each answered on the connection with OTHER-ADDRESS', async () => {
    for (const to of [a1p1, a2p2]) {
      const socket = await tcpClient(to);
      const requests = [bindingBytes(), bindingBytes(), bindingBytes({ changeRequest: { changeIp: false, changePort: false } })];
      const answers = tcpMessages(socket, 3);
      const bytes = Buffer.concat(requests);
      socket.write(bytes.subarray(0, 7));
      socket.write(bytes.subarray(7, 31));
      socket.write(bytes.subarray(31));
      const messages = await answers;
      const self = { ip: socket.localAddress!, port: socket.localPort! };
      const other = to === a1p1 ? a2p2 : a1p1;
      assert.deepEqual(messages.map((message) => message.transactionId), requests.map((request) => request.subarray(8, 20)));
      for (const message of messages) {
        assert.deepEqual(message.attributes, { xorMappedAddress: self, mappedAddress: self, responseOrigin: to, otherAddress: other, changedAddress: other, software: SOFTWARE });
      }
      socket.destroy();
    }
  });

  test('over TCP a CHANGE-REQUEST that asks for a change is 400: the answer cannot leave from elsewhere', async () => {
    const socket = await tcpClient(a1p1);
    const answer = tcpMessages(socket, 1);
    socket.write(bindingBytes({ changeRequest: { changeIp: true, changePort: false } }));
    const [message] = await answer;
    assert.equal(message!.class, 'error');
    assert.equal(message!.attributes.errorCode?.code, 400);
    socket.destroy();
  });

  test('a garbage TCP stream closes that connection only', async () => {
    const bad = await tcpClient(a1p1);
    bad.write('GET / HTTP/1.1\r\nHost: stun\r\n\r\n');
    await once(bad, 'close');
    const huge = await tcpClient(a1p1);
    const header = bindingBytes().subarray(0, 20);
    header.writeUInt16BE(65_532, 2); // announces a message far above the frame limit
    huge.write(header);
    await once(huge, 'close');
    const good = await tcpClient(a1p1);
    const answer = tcpMessages(good, 1);
    good.write(bindingBytes());
    assert.equal((await answer)[0]!.class, 'success');
    good.destroy();
  });
});

describe('STUN server without an alternate (plain RFC 5389)', { timeout: 20_000 }, () => {
  test('one port for UDP and TCP; CHANGE-REQUEST is answered from the primary without OTHER-ADDRESS', async () => {
    const { server, a1p1 } = await startServer({ alternate: false });
    const client = await udpClient();
    try {
      assert.notEqual(a1p1.port, 0);
      const answer = await udpExchange(client, a1p1, bindingBytes({ changeRequest: { changeIp: true, changePort: true } }));
      assert.ok(answer);
      assert.deepEqual(answer.from, a1p1);
      assert.deepEqual(answer.message.attributes, { xorMappedAddress: local(client), mappedAddress: local(client), responseOrigin: a1p1, software: SOFTWARE });
      const socket = await tcpClient(a1p1);
      const messages = tcpMessages(socket, 1);
      socket.write(bindingBytes({ changeRequest: { changeIp: true, changePort: true } }));
      assert.deepEqual((await messages)[0]!.attributes.responseOrigin, a1p1, 'the same port over TCP, the change ignored');
      socket.destroy();
    } finally {
      client.close();
      await server.close();
    }
  });

  test('an idle TCP connection is closed, and connections beyond the cap are refused', async () => {
    const { server, a1p1 } = await startServer({ alternate: false, limits: { idleMs: 200, maxConnections: 2 } });
    try {
      const idle = await tcpClient(a1p1);
      const started = Date.now();
      await once(idle, 'close');
      assert.ok(Date.now() - started >= 150, 'closed for idleness, not at once');
      const [first, second] = [await tcpClient(a1p1), await tcpClient(a1p1)];
      const third = await tcpClient(a1p1);
      await once(third, 'close');
      const answer = tcpMessages(first, 1);
      first.write(bindingBytes());
      assert.equal((await answer)[0]!.class, 'success', 'the connections within the cap are served');
      first.destroy();
      second.destroy();
    } finally {
      await server.close();
    }
  });

  test('a source sending faster than its budget is dropped, other sources are not', async () => {
    const { server, a1p1 } = await startServer({ alternate: false, limits: { udpBurst: 3, udpPerSecond: 0.001 } });
    const [flooder, other] = [await udpClient('127.0.0.1'), await udpClient('127.0.0.3')];
    try {
      for (let index = 0; index < 3; index++) assert.ok(await udpExchange(flooder, a1p1, bindingBytes()), `request ${index + 1} within the burst`);
      assert.equal(await udpExchange(flooder, a1p1, bindingBytes(), 200), undefined, 'beyond the burst: dropped');
      assert.ok(await udpExchange(other, a1p1, bindingBytes()), 'another address still has its own budget');
    } finally {
      flooder.close();
      other.close();
      await server.close();
    }
  });

  test('close() ends open TCP connections and frees the ports', async () => {
    const { server, a1p1 } = await startServer({ alternate: false });
    const socket = await tcpClient(a1p1);
    await server.close();
    await waitFor('the connection to close', () => socket.destroyed || socket.readyState === 'closed');
    const again = new StunServer({ listen: { host: '127.0.0.1', port: a1p1.port }, software: SOFTWARE, logger: captureLogs().logger });
    const ports = await again.start();
    assert.equal(ports.port, a1p1.port);
    await again.close();
  });
});

test('a bind failure names the config key and the fix', async () => {
  const { server, a1p1 } = await startServer({ alternate: false });
  const clash = new StunServer({ listen: { host: '127.0.0.1', port: a1p1.port }, software: SOFTWARE, logger: captureLogs().logger });
  await assert.rejects(clash.start(), { message: `stun.listen 127.0.0.1:${a1p1.port} cannot be bound: another program uses it; pick another stun.listen port` });
  await Promise.all([clash.close(), server.close()]);
});

test('encodeStun requests with a FINGERPRINT are answered too', async () => {
  const { server, a1p1 } = await startServer({ alternate: false });
  const client = await udpClient();
  const request = encodeStun({ method: 0x001, class: 'request', transactionId: newTransactionId(), attributes: {} }, { fingerprint: true });
  assert.ok(await udpExchange(client, a1p1, request));
  client.close();
  await server.close();
});
