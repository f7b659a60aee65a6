import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { waitForTxt } from '../../src/tls/acme/propagation.js';
import { challengeRecord } from '../../src/tls/acme/dns-hook.js';
import { startDnsServer, type TestDnsServer } from '../helpers/dns-server.js';

// The zone example.test: a "recursive resolver" on loopback knows its NS record and the name server's
// address; the name server itself listens on 127.0.0.2:53 (port 53 is where a zone's servers are asked,
// so this needs root), and is the only one that has the TXT record.
const record = challengeRecord('home.example.test', 'token-value-123');
const canBindPort53 = process.getuid?.() === 0;

describe('the propagation check asks the zone\'s authoritative servers, not a resolver\'s cache', { skip: canBindPort53 ? undefined : 'binding 127.0.0.2:53 needs root' }, () => {
  let resolver: TestDnsServer;
  let authoritative: TestDnsServer;
  let records: Parameters<typeof startDnsServer>[2];
  before(async () => {
    // the resolver's copy of the TXT record is stale: a check that asked it would never see the new value
    resolver = await startDnsServer('127.0.0.1', 0, {
      'example.test': { NS: ['ns1.example.test'] },
      'ns1.example.test': { A: ['127.0.0.2'] },
      '_acme-challenge.home.example.test': { TXT: ['stale-value'] },
    });
    records = { '_acme-challenge.home.example.test': { TXT: [] } };
    authoritative = await startDnsServer('127.0.0.2', 53, records);
  });
  after(async () => {
    await Promise.all([resolver?.close(), authoritative?.close()]);
  });

  test('found at the zone\'s name server once the hook has set it there', async () => {
    setTimeout(() => records['_acme-challenge.home.example.test']!.TXT!.push('token-value-123'), 300);
    const result = await waitForTxt(record, { timeoutMs: 5_000, pollMs: 100, resolvers: [`127.0.0.1:${resolver.port}`] });
    assert.deepEqual(result, { ok: true, value: undefined });
    assert.ok(resolver.asked.includes('NS example.test'), `walked up to the zone apex: ${resolver.asked.join(', ')}`);
    assert.ok(!resolver.asked.some((question) => question.startsWith('TXT')), 'the TXT record is never asked of the resolver');
    assert.ok(authoritative.asked.filter((question) => question === 'TXT _acme-challenge.home.example.test').length >= 2, 'polled at the name server until it appeared');
  });

  test('a record that never appears: a timeout naming the server asked and the dig command', async () => {
    const missing = challengeRecord('home.example.test', 'never-set');
    const result = await waitForTxt(missing, { timeoutMs: 400, pollMs: 100, resolvers: [`127.0.0.1:${resolver.port}`] });
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.error, /did not appear at 127\.0\.0\.2:53 within .*dig TXT _acme-challenge\.home\.example\.test\. @127\.0\.0\.2/);
  });

  test('a name with no zone anywhere: a clear message', async () => {
    const result = await waitForTxt(challengeRecord('nowhere.invalid-zone', 'x'), { timeoutMs: 400, resolvers: [`127.0.0.1:${resolver.port}`] });
    assert.equal(result.ok, false);
    assert.match(result.ok ? '' : result.error, /cannot find the authoritative DNS servers of _acme-challenge\.nowhere\.invalid-zone\.: no NS records/);
  });
});
