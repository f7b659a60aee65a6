// `homeport nat-check` and homeport's STUN server in the NAT lab (issue 10), for every router type: nat-check
// against coturn (RFC 5780) gives the expected RFC 5780 behaviour and classic class, against stund (RFC 3489)
// the classic class; coturn's own client reports the same mapping and filtering against homeport's STUN server
// as against coturn; and against homeport's server without `alternate` (a plain RFC 5389 server that ignores
// CHANGE-REQUEST) nat-check says "cannot tell", never "Full Cone".
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { startStunRendezvous } from './homeport.js';
import { ROUTER_TYPES, skipReason, startLab, type Lab, type LabChild, type RouterType } from './lab.js';
import { parseEndpoint } from './probe-protocol.js';
import {
  COTURN_PORT, STUN_TOOLS, STUND_PORT, classicStun, natCheck, natDiscovery, startCoturn, startStund,
  type Behaviour, type ClassicClass, type Discovery, type NatCheckReport,
} from './stun-peers.js';

const skip = skipReason(STUN_TOOLS);

// ---- the expected table --------------------------------------------------------------------------------------

interface Row {
  /** RFC 3489 class: Vovida's `stun` against stund */
  classic: ClassicClass;
  /** the rest of the UDP columns: coturn's turnutils_natdiscovery -m -f -H against coturn */
  nat: boolean;
  mapping: Behaviour;
  filtering: Behaviour;
  hairpinning: boolean;
  /** whose address a STUN server sees: the home router's WAN address, or home's own */
  external: 'homeRouterWan' | 'home';
  /** TCP from one local port to both of coturn's addresses: one mapping, and the local port kept (as nat.test.ts checks the lab) */
  tcpStable: boolean;
  tcpPreserved: boolean;
}

const EI = 'endpoint-independent';
const AD = 'address-dependent';
const APD = 'address-and-port-dependent';

/** What the lab's routers do, as the reference clients measured them (README, "Reference STUN peers"). */
const EXPECTED: Record<RouterType, Row> = {
  //         classic                   nat    mapping filtering hairpin external         TCP stable preserved
  none: row('Open Internet',          false, EI,     EI,       true,   'home',          true,      true),
  fw: row('Symmetric UDP Firewall',   false, EI,     APD,      true,   'home',          true,      true),
  fc: row('Full Cone',                true,  EI,     EI,       false,  'homeRouterWan', true,      false),
  arc: row('Restricted Cone',         true,  EI,     AD,       false,  'homeRouterWan', true,      false),
  prc: row('Restricted Port',         true,  EI,     APD,      false,  'homeRouterWan', true,      false),
  sym: row('Symmetric',               true,  APD,    APD,      false,  'homeRouterWan', false,     false),
};

function row(
  classic: ClassicClass, nat: boolean, mapping: Behaviour, filtering: Behaviour, hairpinning: boolean,
  external: Row['external'], tcpStable: boolean, tcpPreserved: boolean,
): Row {
  return { classic, nat, mapping, filtering, hairpinning, external, tcpStable, tcpPreserved };
}

// ---- comparisons -----------------------------------------------------------------------------------------------

/** Compares named fields and says which differ ("filtering: got …, expected …"), then what was printed. */
function assertFields<T extends object>(actual: T, expected: T, printed: string): void {
  const differing = (Object.keys(expected) as (keyof T)[])
    .filter((key) => !isDeepStrictEqual(actual[key], expected[key]))
    .map((key) => `${String(key)}: got ${JSON.stringify(actual[key])}, expected ${JSON.stringify(expected[key])}`);
  assert.ok(differing.length === 0, `${differing.join('; ')}\n${printed}`);
}

function assertUdp(lab: Lab, report: NatCheckReport, expected: Row): void {
  const { udp } = report;
  const printed = JSON.stringify(report, null, 2);
  assertFields(
    { nat: udp.nat, classic: udp.classic, mapping: udp.mapping, filtering: udp.filtering, hairpinning: udp.hairpinning },
    {
      nat: expected.nat,
      classic: expected.classic,
      mapping: expected.mapping,
      filtering: expected.filtering,
      // without a NAT there is nothing to hairpin (coturn's -H just gets its own packet back): nat-check says null
      hairpinning: expected.nat ? expected.hairpinning : null,
    },
    printed,
  );
  assertFields({ localIp: parseEndpoint(udp.local).host }, { localIp: lab.addresses.home }, printed);
  assertSeenAs(lab, expected, udp.external, udp.local, printed);
}

function assertTcp(lab: Lab, report: NatCheckReport, expected: Row): void {
  const printed = JSON.stringify(report, null, 2);
  const { tcp } = report;
  assert.ok(tcp && 'mapped' in tcp, `no TCP result:\n${printed}`);
  assertFields({ stable: tcp.stable, preserved: tcp.preserved }, { stable: expected.tcpStable, preserved: expected.tcpPreserved }, `TCP ${printed}`);
  for (const mapped of tcp.mapped) assertSeenAs(lab, expected, mapped, tcp.local, printed);
  if (expected.nat) assert.ok(!inPublicRange(lab, parseEndpoint(tcp.local).port), `the lab keeps a local port inside its public range:\n${printed}`);
}

/** A mapped "ip:port": home's own endpoint without NAT, else the router's WAN address and a port of its range. */
function assertSeenAs(lab: Lab, expected: Row, mapped: string | null, local: string, printed: string): void {
  assert.ok(mapped, `no mapped address:\n${printed}`);
  const { host, port } = parseEndpoint(mapped);
  assertFields({ mappedIp: host }, { mappedIp: lab.addresses[expected.external] }, printed);
  if (expected.nat) assert.ok(inPublicRange(lab, port), `mapped port ${port} outside the router's range:\n${printed}`);
  else assert.equal(mapped, local, `without NAT the server sees home's own endpoint:\n${printed}`);
}

function inPublicRange(lab: Lab, port: number): boolean {
  const { low, high } = lab.portRange('home-router');
  return port >= low && port <= high;
}

const discoveryVerdict = ({ nat, mapping, filtering }: Discovery): Pick<Discovery, 'nat' | 'mapping' | 'filtering'> => ({ nat, mapping, filtering });

// ---- the tests -------------------------------------------------------------------------------------------------

describe('homeport nat-check and STUN server in the NAT lab', { skip }, () => {
  let lab: Lab;
  let coturn: string;
  let stund: string;
  let homeportStun: string;

  before(async () => {
    lab = await startLab({ home: 'none', remote: 'prc' });
    await Promise.all([startCoturn(lab), startStund(lab)]);
    coturn = `${lab.addresses.rendezvous}:${COTURN_PORT}`;
    stund = `${lab.addresses.rendezvous}:${STUND_PORT}`;
  });
  after(() => lab?.down());

  /** homeport's rendezvous answering STUN at homeportStun for the tests of the enclosing describe */
  function useHomeportStun(options: { alternate: boolean }): void {
    let server: LabChild | undefined;
    before(async () => ({ server, address: homeportStun } = await startStunRendezvous(lab, options)));
    after(() => server?.stop());
  }

  describe("homeport's STUN server with alternate (RFC 5780)", () => {
    useHomeportStun({ alternate: true });

    for (const type of ROUTER_TYPES) {
      const expected = EXPECTED[type];
      describe(`home router ${type}: ${expected.classic}`, () => {
        let coturnSays: Discovery | undefined;
        before(() => lab.setNat('home-router', type));

        test("the row holds: coturn's client against coturn, Vovida's stun against stund", async (t) => {
          coturnSays = await natDiscovery(lab, 'home', coturn, { hairpinning: true });
          const vovida = await classicStun(lab, 'home', stund);
          t.diagnostic(`turnutils_natdiscovery -m -f -H: ${coturnSays.elapsedMs} ms, stun: ${vovida.elapsedMs} ms`);
          const { nat, mapping, filtering, hairpinning, classic } = expected;
          const measured = { ...discoveryVerdict(coturnSays), hairpinning: coturnSays.hairpinning, classic: vovida.classic };
          assertFields(measured, { nat, mapping, filtering, hairpinning, classic }, `stun: ${vovida.line}\n${coturnSays.output}`);
        });

        test(`nat-check --tcp against coturn: ${expected.mapping} mapping, ${expected.filtering} filtering, TCP ${expected.tcpStable ? 'stable' : 'unstable'}`, async (t) => {
          const report = await natCheck(lab, coturn, { tcp: true });
          t.diagnostic(`nat-check --tcp against coturn: ${report.elapsedMs} ms`);
          assertUdp(lab, report, expected);
          assertTcp(lab, report, expected);
        });

        test(`nat-check against stund (RFC 3489): ${expected.classic}`, async (t) => {
          const report = await natCheck(lab, stund);
          t.diagnostic(`nat-check against stund: ${report.elapsedMs} ms`);
          assertFields({ classic: report.udp.classic }, { classic: expected.classic }, JSON.stringify(report, null, 2));
        });

        test("coturn's client reports the same against homeport's STUN server as against coturn", async (t) => {
          const theirs = await natDiscovery(lab, 'home', homeportStun);
          t.diagnostic(`turnutils_natdiscovery -m -f against homeport: ${theirs.elapsedMs} ms`);
          coturnSays ??= await natDiscovery(lab, 'home', coturn);
          assertFields(discoveryVerdict(theirs), discoveryVerdict(coturnSays), `(got: against homeport, expected: against coturn)\nagainst homeport:\n${theirs.output}`);
        });
      });
    }
  });

  describe("homeport's STUN server without alternate (a plain RFC 5389 server): cannot tell, never Full Cone", () => {
    useHomeportStun({ alternate: false });

    for (const type of ROUTER_TYPES) {
      const expected = EXPECTED[type];
      test(`home router ${type}: classic and filtering 'cannot tell'; the external address still right`, async (t) => {
        await lab.setNat('home-router', type);
        const report = await natCheck(lab, homeportStun);
        t.diagnostic(`nat-check against a plain server: ${report.elapsedMs} ms`);
        const { udp } = report;
        const printed = JSON.stringify(report, null, 2);
        assertFields(
          { classic: udp.classic, mapping: udp.mapping, filtering: udp.filtering, nat: udp.nat },
          // without NAT there is no mapping to vary (RFC 5780: endpoint-independent); behind one it cannot be told
          { classic: 'cannot tell', mapping: expected.nat ? 'cannot tell' : expected.mapping, filtering: 'cannot tell', nat: expected.nat },
          printed,
        );
        assert.ok(udp.notes.length > 0, `a 'cannot tell' comes with a note why:\n${printed}`);
        assertSeenAs(lab, expected, udp.external, udp.local, printed);
      });
    }
  });
});
