import type { Logger } from '../common/logger.js';
import { err, ok, type Result } from '../common/result.js';
import type { RendezvousAgentEntry } from '../config/rendezvous-types.js';
import type { AcmeChallengeOrder } from '../protocol/messages.js';
import type { ChallengeStore } from './acme-challenges.js';

/**
 * Carries out the agents' `acmeChallenge` requests. The security rule lives here: an agent answers only
 * for the names its [[agent]] entry lists in acmeHostnames, since answering a name's challenge is all a
 * CA asks before it issues a certificate for that name.
 */
export class AgentChallenges {
  private readonly names: ReadonlyMap<string, ReadonlySet<string>>;
  private readonly log: Logger;

  constructor(agents: readonly RendezvousAgentEntry[], private readonly store: ChallengeStore, logger: Logger) {
    this.names = new Map(agents.map((agent) => [agent.name, new Set(agent.acmeHostnames ?? [])]));
    this.log = logger.child({ component: 'acme-http' });
  }

  handle(agent: string, order: AcmeChallengeOrder): Result<void> {
    const { op, hostname, token, keyAuthorization } = order;
    if (!this.names.get(agent)?.has(hostname)) {
      this.log.warn({ agent, hostname, op }, 'http-01 challenge refused: not one of the agent\'s acmeHostnames');
      return err(`${hostname} is not in this agent's acmeHostnames in the rendezvous config; only its operator can add it there`);
    }
    if (op === 'unset') {
      this.store.unset(agent, hostname, token);
      this.log.debug({ agent, hostname }, 'http-01 challenge unset');
      return ok(undefined);
    }
    const result = this.store.set(agent, hostname, token, keyAuthorization!); // the parser requires it with set
    if (result.ok) this.log.info({ agent, hostname }, 'http-01 challenge set');
    else this.log.warn({ agent, hostname, reason: result.error }, 'http-01 challenge refused');
    return result;
  }
}
