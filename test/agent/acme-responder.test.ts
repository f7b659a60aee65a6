import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { AcmeChallengeOrder } from '../../src/protocol/messages.js';
import { lateBoundHttp01, RendezvousHttp01Responder, type AcmeChannel } from '../../src/agent/acme-responder.js';
import type { Http01Responder } from '../../src/tls/acme/http01.js';
import { waitFor } from '../helpers/wait.js';

// the responder's timers are unref'd (they must not hold a stopping agent up): something has to keep this process alive
const keepAlive = setInterval(() => undefined, 1000);
after(() => clearInterval(keepAlive));

const TOKEN = 'a'.repeat(43);
const KEY_AUTH = `${TOKEN}.${'T'.repeat(43)}`;

/** A control client stand-in: records what is sent; `up` says whether a session is registered. */
class FakeChannel implements AcmeChannel {
  readonly sent: AcmeChallengeOrder[] = [];
  up = true;
  accepts = true;
  get connected(): boolean {
    return this.up;
  }
  sendAcmeChallenge(order: AcmeChallengeOrder): boolean {
    if (this.accepts) this.sent.push(order);
    return this.accepts;
  }
}

function setUp(options: { timeoutMs?: number; connectWaitMs?: number } = {}): { channel: FakeChannel; responder: RendezvousHttp01Responder } {
  const channel = new FakeChannel();
  return { channel, responder: new RendezvousHttp01Responder(channel, options) };
}

test('set and unset go out with fresh ids and a lower-cased name, and resolve on the rendezvous\'s ok', async () => {
  const { channel, responder } = setUp();
  const set = responder.set('Home.Example.com', TOKEN, KEY_AUTH);
  const unset = responder.unset('home.example.com', TOKEN);
  await waitFor('both requests', () => channel.sent.length === 2);
  assert.deepEqual(channel.sent, [
    { id: 1, op: 'set', hostname: 'home.example.com', token: TOKEN, keyAuthorization: KEY_AUTH },
    { id: 2, op: 'unset', hostname: 'home.example.com', token: TOKEN },
  ]);
  responder.receive({ id: 2, ok: true });
  responder.receive({ id: 1, ok: true });
  await Promise.all([set, unset]);
});

test('each failure rejects with words that say what happened', async () => {
  const cases: [name: string, run: (channel: FakeChannel, responder: RendezvousHttp01Responder) => Promise<void>, message: RegExp][] = [
    ['refused', async (channel, responder) => {
      const set = responder.set('other.example.com', TOKEN, KEY_AUTH);
      await waitFor('the request', () => channel.sent.length === 1);
      responder.receive({ id: 1, ok: false, error: 'other.example.com is not in this agent\'s acmeHostnames in the rendezvous config' });
      await set;
    }, /^refused by the rendezvous: other\.example\.com is not in this agent's acmeHostnames in the rendezvous config$/],
    ['no answer', (_channel, responder) => responder.set('home.example.com', TOKEN, KEY_AUTH), /^the rendezvous did not answer within 0\.05 s$/],
    ['the connection ends first', async (channel, responder) => {
      const set = responder.set('home.example.com', TOKEN, KEY_AUTH);
      await waitFor('the request', () => channel.sent.length === 1);
      responder.disconnected('rendezvous silent for 3000 ms');
      await set;
    }, /^the connection to the rendezvous ended before it answered \(rendezvous silent for 3000 ms\)$/],
    ['the send fails', (channel, responder) => {
      channel.accepts = false;
      return responder.set('home.example.com', TOKEN, KEY_AUTH);
    }, /^not connected to the rendezvous$/],
    ['never connected', (channel, responder) => {
      channel.up = false;
      return responder.unset('home.example.com', TOKEN);
    }, /^not connected to the rendezvous \(waited 0\.05 s\), so the challenge cannot be handed to it$/],
  ];
  for (const [name, run, message] of cases) {
    const { channel, responder } = setUp({ timeoutMs: 50, connectWaitMs: 50 });
    await assert.rejects(run(channel, responder), (error: Error) => message.test(error.message), name);
  }
});

test('a request made before the connection is up waits for it and then goes out', async () => {
  const { channel, responder } = setUp({ connectWaitMs: 5_000 });
  channel.up = false;
  const set = responder.set('home.example.com', TOKEN, KEY_AUTH);
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(channel.sent, [], 'nothing sent while disconnected');
  channel.up = true;
  responder.connected();
  await waitFor('the request', () => channel.sent.length === 1);
  responder.receive({ id: 1, ok: true });
  await set;
});

test('an answer for no waiting request (late, or never asked) changes nothing', async () => {
  const { channel, responder } = setUp({ timeoutMs: 30 });
  await assert.rejects(responder.set('home.example.com', TOKEN, KEY_AUTH), /did not answer/);
  responder.receive({ id: 1, ok: true });
  responder.receive({ id: 99, ok: false, error: 'x' });
  const next = responder.set('home.example.com', TOKEN, KEY_AUTH);
  await waitFor('the second request', () => channel.sent.length === 2);
  assert.equal(channel.sent[1]!.id, 2, 'ids are never reused');
  responder.receive({ id: 2, ok: true });
  await next;
});

test('lateBoundHttp01: calls made before bind wait for the target and then reach it, in order', async () => {
  const calls: string[] = [];
  const target: Http01Responder = {
    set: async (hostname, token, keyAuthorization) => void calls.push(`set ${hostname} ${token} ${keyAuthorization}`),
    unset: async (hostname, token) => void calls.push(`unset ${hostname} ${token}`),
  };
  const late = lateBoundHttp01();
  const set = late.responder.set('home.example.com', 't', 'k');
  const unset = late.responder.unset('home.example.com', 't');
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(calls, []);
  late.bind(target);
  await Promise.all([set, unset]);
  await late.responder.set('b.example.com', 'u', 'v');
  assert.deepEqual(calls, ['set home.example.com t k', 'unset home.example.com t', 'set b.example.com u v']);
});
