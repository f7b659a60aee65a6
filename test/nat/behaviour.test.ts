import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { classicClass, describeUdp, otherAddressOf, type Answer, type Observations } from '../../src/nat/behaviour.js';

// A server at 203.0.113.10:3478 with its other address 203.0.113.11:3479; the client at 10.10.0.2:40000.
const server = { ip: '203.0.113.10', port: 3478 };
const other = { ip: '203.0.113.11', port: 3479 };
const local = { ip: '10.10.0.2', port: 40000 };
const mapped = (port: number, ip = '198.51.100.2') => ({ ip, port });
const reply = (mappedPort: number, from = server, withOther = true): Answer => ({ mapped: mapped(mappedPort), from, ...(withOther ? { other } : {}) });

/** Observations as a NAT with this mapping and filtering would produce them. */
function natObservations(mapping: 'EIM' | 'ADM' | 'APDM', filtering: 'EIF' | 'ADF' | 'APDF'): Observations {
  const byMapping = { EIM: [20001, 20001, 20001], ADM: [20001, 20002, 20002], APDM: [20001, 20002, 20003] }[mapping];
  return {
    server,
    local,
    mappingI: reply(byMapping[0]!) as Observations['mappingI'],
    mappingII: reply(byMapping[1]!, { ip: other.ip, port: server.port }),
    mappingIII: reply(byMapping[2]!, other),
    filteringI: reply(20010),
    filteringII: filtering === 'EIF' ? reply(20010, other) : undefined,
    filteringIII: filtering === 'APDF' ? undefined : reply(20010, { ip: server.ip, port: other.port }),
    hairpin: false,
  };
}

describe('NAT behaviour from RFC 5780 observations', () => {
  const rows = [
    { mapping: 'EIM', filtering: 'EIF', classic: 'Full Cone', words: ['endpoint-independent', 'endpoint-independent'] },
    { mapping: 'EIM', filtering: 'ADF', classic: 'Restricted Cone', words: ['endpoint-independent', 'address-dependent'] },
    { mapping: 'EIM', filtering: 'APDF', classic: 'Restricted Port', words: ['endpoint-independent', 'address-and-port-dependent'] },
    { mapping: 'ADM', filtering: 'APDF', classic: 'Symmetric', words: ['address-dependent', 'address-and-port-dependent'] },
    { mapping: 'APDM', filtering: 'APDF', classic: 'Symmetric', words: ['address-and-port-dependent', 'address-and-port-dependent'] },
    { mapping: 'APDM', filtering: 'EIF', classic: 'Symmetric', words: ['address-and-port-dependent', 'endpoint-independent'] },
  ] as const;
  for (const row of rows) {
    test(`${row.mapping} + ${row.filtering} is ${row.classic}`, () => {
      const result = describeUdp(natObservations(row.mapping, row.filtering));
      assert.deepEqual([result.mapping, result.filtering], row.words);
      assert.equal(result.classic, row.classic);
      assert.equal(result.nat, true);
      assert.deepEqual(result.external, mapped(20001));
      assert.deepEqual(result.notes, []);
    });
  }

  test('no NAT: the mapped address is the local one; open or behind a stateful firewall', () => {
    const open = { ...natObservations('EIM', 'EIF'), mappingI: { mapped: local, from: server, other } };
    assert.equal(describeUdp(open).classic, 'Open Internet');
    assert.equal(describeUdp(open).nat, false);
    assert.equal(describeUdp(open).hairpinning, undefined);
    const firewalled = { ...natObservations('EIM', 'APDF'), mappingI: { mapped: local, from: server, other } };
    assert.equal(describeUdp(firewalled).classic, 'Symmetric UDP Firewall');
  });

  test('no answer at all is Blocked', () => {
    const result = describeUdp({ server, local, mappingI: undefined });
    assert.equal(result.classic, 'Blocked');
    assert.equal(result.external, undefined);
    assert.match(result.notes[0]!, /no answer from 203\.0\.113\.10:3478/);
  });

  test('a server that ignores CHANGE-REQUEST is never taken for a full cone (the pystun3 mistake)', () => {
    // it answers test II from its primary address, which a port-restricted NAT lets through
    const observations = { ...natObservations('EIM', 'APDF'), filteringII: reply(20010, server), filteringIII: reply(20010, server) };
    const result = describeUdp(observations);
    assert.equal(result.filtering, 'cannot tell');
    assert.equal(result.classic, 'cannot tell');
    assert.match(result.notes.join(' '), /ignores CHANGE-REQUEST/);
  });

  test('a plain RFC 5389 server (no OTHER-ADDRESS) gives cannot tell, with the external address still known', () => {
    const result = describeUdp({ server, local, mappingI: { mapped: mapped(20001), from: server } });
    assert.deepEqual([result.classic, result.mapping, result.filtering], ['cannot tell', 'cannot tell', 'cannot tell']);
    assert.deepEqual(result.external, mapped(20001));
    assert.match(result.notes.join(' '), /no OTHER-ADDRESS/);
  });

  test('a refused CHANGE-REQUEST (error response) gives cannot tell, not a filtering verdict', () => {
    const result = describeUdp({ ...natObservations('EIM', 'APDF'), filteringII: { refused: '420 Unknown Attribute' } });
    assert.equal(result.filtering, 'cannot tell');
    assert.match(result.notes.join(' '), /refused: 420/);
  });

  test('hairpinning is reported behind a NAT', () => {
    assert.equal(describeUdp({ ...natObservations('EIM', 'EIF'), hairpin: true }).hairpinning, true);
    assert.equal(describeUdp(natObservations('EIM', 'EIF')).hairpinning, false);
  });
});

describe('OTHER-ADDRESS checks', () => {
  const rows: Array<[string, { ip: string; port: number } | undefined, { ip: string; port: number }, boolean]> = [
    ['usable', other, server, true],
    ['missing', undefined, server, false],
    ['same IP', { ip: server.ip, port: 3479 }, server, false],
    ['same port', { ip: other.ip, port: server.port }, server, false],
    ['private from a public server', { ip: '10.0.0.2', port: 3479 }, server, false],
    ['private from a private server (a LAN test)', { ip: '192.168.1.3', port: 3479 }, { ip: '192.168.1.2', port: 3478 }, true],
    ['loopback from a loopback server', { ip: '127.0.0.2', port: 3479 }, { ip: '127.0.0.1', port: 3478 }, true],
  ];
  for (const [name, otherAddress, at, usable] of rows) {
    test(name, () => {
      const result = otherAddressOf(at, { mapped: mapped(1), from: at, ...(otherAddress ? { other: otherAddress } : {}) });
      assert.equal(result.ok, usable, result.ok ? 'usable' : result.error);
    });
  }
});

test('classic class when parts are unknown', () => {
  assert.equal(classicClass(true, 'address-dependent', 'cannot tell'), 'Symmetric', 'a varying mapping is symmetric whatever the filtering');
  assert.equal(classicClass(true, 'endpoint-independent', 'cannot tell'), 'cannot tell');
  assert.equal(classicClass(false, 'endpoint-independent', 'cannot tell'), 'cannot tell');
  assert.equal(classicClass(undefined, 'cannot tell', 'cannot tell'), 'Blocked');
});
