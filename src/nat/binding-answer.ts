import { isUnspecifiedIp } from '../common/address.js';
import { BINDING, encodeStun, type ChangeRequest, type StunAddress, type StunAttributes, type StunDecodeError, type StunDecodeResult, type StunMessage } from './stun-message.js';

/**
 * What the STUN server sends back for one received message, decided without any I/O: RFC 8489 Binding,
 * plus RFC 5780 (CHANGE-REQUEST, OTHER-ADDRESS, RESPONSE-ORIGIN) when the server has an alternate address.
 */

export type StunTransport = 'udp' | 'tcp';

/**
 * One of the server's four sockets by RFC 5780's names: primary or alternate IP (A1, A2) × primary or
 * alternate port (P1, P2). Without an alternate there is only A1:P1.
 */
export interface SocketRole {
  alternateIp: boolean;
  alternatePort: boolean;
}

export const PRIMARY_ROLE: SocketRole = { alternateIp: false, alternatePort: false };

/** The four roles, A1:P1 first. */
export const SOCKET_ROLES: readonly SocketRole[] = [
  PRIMARY_ROLE,
  { alternateIp: false, alternatePort: true },
  { alternateIp: true, alternatePort: false },
  { alternateIp: true, alternatePort: true },
];

export interface BindingContext {
  transport: StunTransport;
  /** Where the request came from (IPv4-mapped IPv6 already turned into IPv4): what the client's NAT made of it. */
  source: StunAddress;
  /** A1:P1. Its ip may be unspecified ("0.0.0.0", "::") only when there is no alternate. */
  primary: StunAddress;
  /** A2:P2, when the server does RFC 5780. */
  alternate?: StunAddress;
  /** The socket the request arrived on. */
  received: SocketRole;
  /** The SOFTWARE attribute: "homeport <version>". */
  software: string;
}

export interface BindingAnswer {
  /** The whole response, FINGERPRINT included. */
  packet: Buffer;
  /** The socket that must send it: RESPONSE-ORIGIN names this one. */
  from: SocketRole;
}

/** The address a role stands for. */
export function roleAddress(role: SocketRole, primary: StunAddress, alternate: StunAddress | undefined): StunAddress {
  return {
    ip: role.alternateIp && alternate ? alternate.ip : primary.ip,
    port: role.alternatePort && alternate ? alternate.port : primary.port,
  };
}

/** "A1:P1" … "A2:P2", for logs and as a map key. */
export function roleName(role: SocketRole): string {
  return `A${role.alternateIp ? 2 : 1}:P${role.alternatePort ? 2 : 1}`;
}

/** The response to `decoded`, or undefined when RFC 8489 says to stay silent (no STUN request, or not one to answer). */
export function answerBinding(decoded: StunDecodeResult, context: BindingContext): BindingAnswer | undefined {
  if (!decoded.ok) return answerUndecodable(decoded.error, context);
  const request = decoded.value;
  if (request.class !== 'request' || request.method !== BINDING) return undefined;
  const change = context.alternate ? request.attributes.changeRequest : undefined; // without an alternate, a plain RFC 5389 server
  const changes = change !== undefined && (change.changeIp || change.changePort);
  // a TCP response can only go back on the connection the request came in on: a change cannot be honoured
  if (changes && context.transport === 'tcp') return errorAnswer(request.transactionId, context, 400, 'CHANGE-REQUEST works over UDP only');
  return success(request, context, changes ? changedRole(context.received, change!) : context.received);
}

/**
 * A message that failed to decode gets an error response only when it is a request with a valid header:
 * 420 for comprehension-required attributes it does not know, 400 for a malformed attribute. A bad length
 * or FINGERPRINT means it may not be STUN at all, and RFC 8489 §6.3 has those discarded silently.
 */
function answerUndecodable(error: StunDecodeError, context: BindingContext): BindingAnswer | undefined {
  const header = error.header;
  if (!header || header.class !== 'request' || header.method !== BINDING) return undefined;
  if (error.kind === 'unknown-required') {
    return errorAnswer(header.transactionId, context, 420, 'Unknown Attribute', { unknownAttributes: error.unknown ?? [] });
  }
  return error.kind === 'bad-attribute' ? errorAnswer(header.transactionId, context, 400, 'Bad Request') : undefined;
}

function success(request: StunMessage, context: BindingContext, from: SocketRole): BindingAnswer {
  const origin = roleAddress(from, context.primary, context.alternate);
  const attributes: StunAttributes = {
    xorMappedAddress: context.source,
    mappedAddress: context.source, // RFC 3489 clients read only this one
    // unknown while a wildcard socket cannot tell which of the host's addresses a datagram reached
    ...(isUnspecifiedIp(origin.ip) ? {} : { responseOrigin: origin }),
    ...otherAddress(context),
    software: context.software,
  };
  return answer({ method: BINDING, class: 'success', transactionId: request.transactionId, attributes }, from);
}

/** RFC 5780 Table 1: always the other IP and the other port of the socket the request reached, whatever the flags. */
function otherAddress(context: BindingContext): Pick<StunAttributes, 'otherAddress' | 'changedAddress'> {
  if (!context.alternate) return {};
  const other = roleAddress({ alternateIp: !context.received.alternateIp, alternatePort: !context.received.alternatePort }, context.primary, context.alternate);
  return { otherAddress: other, changedAddress: other }; // CHANGED-ADDRESS: the same for RFC 3489 clients
}

function changedRole(received: SocketRole, change: ChangeRequest): SocketRole {
  return { alternateIp: received.alternateIp !== change.changeIp, alternatePort: received.alternatePort !== change.changePort };
}

function errorAnswer(transactionId: Buffer, context: BindingContext, code: number, reason: string, extra: StunAttributes = {}): BindingAnswer {
  const attributes: StunAttributes = { errorCode: { code, reason }, ...extra, software: context.software };
  return answer({ method: BINDING, class: 'error', transactionId, attributes }, context.received);
}

function answer(message: Omit<StunMessage, 'fingerprint'>, from: SocketRole): BindingAnswer {
  return { packet: encodeStun(message, { fingerprint: true }), from };
}
