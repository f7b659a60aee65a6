import type { UdpBehaviour } from './behaviour.js';

/** From the TCP check: did connections from one local port to two server addresses get the same mapping? */
export interface TcpStability {
  stable: boolean;
}

/**
 * What the user can do, in plain words, given what the check found. Pure. The first line answers the
 * question homeport exists for (can the punched TCP port be reached directly?), the next one UDP hole
 * punching (the datagram tunnel), the last what to do when neither works.
 */
export function adviceFor(udp: UdpBehaviour, tcp?: TcpStability): string[] {
  if (udp.classic === 'Blocked') {
    return ['no STUN answer over UDP: UDP is blocked here (or the server is down); UDP hole punching will not work',
      'use the relay: the rendezvous carries TCP when no direct path exists'];
  }
  if (udp.classic === 'cannot tell') {
    return ['cannot tell what the NAT allows with this server: check against a server with RFC 5780 (a homeport rendezvous with [stun] alternate, or coturn)'];
  }
  return [directAdvice(udp, tcp), punchingAdvice(udp), ...(needsRelay(udp, tcp) ? ['until then, use the relay: the rendezvous carries the traffic and TLS still ends at home'] : [])];
}

function directAdvice(udp: UdpBehaviour, tcp: TcpStability | undefined): string {
  if (tcp !== undefined && !tcp.stable) {
    return 'direct TCP access will not work: the NAT gives every TCP connection a new port; add a port mapping on the router for the agent\'s port';
  }
  if (udp.nat === false) {
    return udp.filtering === 'endpoint-independent'
      ? 'direct TCP access will work: this host has a public address (open the agent\'s port in any host firewall)'
      : 'direct TCP access will not work yet: there is no NAT, but a firewall drops unsolicited traffic; open the agent\'s port in it';
  }
  if (udp.mapping !== 'endpoint-independent') {
    return 'direct TCP access will not work: the NAT is symmetric; add a port mapping on the router for the agent\'s port, or ask the ISP for a public address';
  }
  switch (udp.filtering) {
    case 'endpoint-independent': return 'direct TCP access will work: the NAT is full cone, so the agent\'s punched port is reachable from anywhere';
    default: return 'direct TCP access will not work yet: set your router\'s NAT to full cone (endpoint-independent filtering) or add a port mapping for the agent\'s port';
  }
}

/** From the NAT lab's results: punching works unless both ends are symmetric, or one is symmetric and the other port-restricted. */
function punchingAdvice(udp: UdpBehaviour): string {
  if (udp.nat === false && udp.filtering === 'endpoint-independent') return 'UDP hole punching is not needed: peers reach this host directly';
  if (udp.mapping !== 'endpoint-independent') return 'UDP hole punching will work only with peers behind a full-cone or address-restricted NAT, not with symmetric or port-restricted ones';
  if (udp.filtering === 'address-and-port-dependent') return 'UDP hole punching will work with peers that are not symmetric';
  return 'UDP hole punching will work with any peer, even one behind a symmetric NAT';
}

function needsRelay(udp: UdpBehaviour, tcp: TcpStability | undefined): boolean {
  return (tcp !== undefined && !tcp.stable) || udp.filtering !== 'endpoint-independent' || udp.mapping !== 'endpoint-independent';
}
