import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adviceFor } from '../../src/nat/advice.js';
import type { Behaviour, ClassicNat, UdpBehaviour } from '../../src/nat/behaviour.js';

function udp(classic: ClassicNat, mapping: Behaviour, filtering: Behaviour, nat: boolean | undefined = true): UdpBehaviour {
  return { external: { ip: '198.51.100.2', port: 20001 }, nat, classic, mapping, filtering, hairpinning: false, notes: [] };
}

const EI = 'endpoint-independent';
const AD = 'address-dependent';
const APD = 'address-and-port-dependent';

// one row per situation: the phrases a user must read (each must appear in some advice line)
const rows: Array<[string, UdpBehaviour, { stable: boolean } | undefined, RegExp[]]> = [
  ['full cone', udp('Full Cone', EI, EI), { stable: true }, [/direct TCP access will work/, /hole punching will work with any peer/]],
  ['restricted cone', udp('Restricted Cone', EI, AD), undefined, [/set your router's NAT to full cone/, /port mapping/, /with any peer/, /use the relay/]],
  ['port restricted', udp('Restricted Port', EI, APD), undefined, [/direct TCP access will not work yet/, /peers that are not symmetric/, /use the relay/]],
  ['symmetric', udp('Symmetric', APD, APD), undefined, [/NAT is symmetric; add a port mapping/, /only with peers behind a full-cone or address-restricted/, /use the relay/]],
  ['open internet', udp('Open Internet', EI, EI, false), undefined, [/public address/, /not needed/]],
  ['firewall', udp('Symmetric UDP Firewall', EI, APD, false), undefined, [/firewall drops unsolicited/, /use the relay/]],
  ['full cone UDP but TCP remapped', udp('Full Cone', EI, EI), { stable: false }, [/new port; add a port mapping/, /use the relay/]],
  ['blocked', udp('Blocked', 'cannot tell', 'cannot tell', undefined), undefined, [/UDP is blocked/, /use the relay/]],
  ['cannot tell', udp('cannot tell', 'cannot tell', 'cannot tell'), undefined, [/cannot tell what the NAT allows/, /RFC 5780/]],
  ['no NAT, filtering unknown', udp('cannot tell', EI, 'cannot tell', false), undefined, [/cannot tell what the NAT allows/]],
];

for (const [name, behaviour, tcp, phrases] of rows) {
  test(`advice: ${name}`, () => {
    const advice = adviceFor(behaviour, tcp).join('\n');
    for (const phrase of phrases) assert.match(advice, phrase);
  });
}

test('advice: a full cone with stable TCP does not send the user to the relay', () => {
  assert.doesNotMatch(adviceFor(udp('Full Cone', EI, EI), { stable: true }).join('\n'), /relay/);
});

test('advice: an unknown filtering never reads as a firewall or a full cone', () => {
  const advice = adviceFor(udp('cannot tell', EI, 'cannot tell', false)).join('\n');
  assert.doesNotMatch(advice, /firewall|will work/);
});
