import type { PublicAddress } from '../common/address.js';
import type { Logger } from '../common/logger.js';
import { checkNat, type NatReport } from '../nat/nat-check.js';

/** What `homeport status` shows of the NAT check. */
export interface NatStatus {
  /** The STUN server asked: the rendezvous. */
  server: string;
  /** false: the rendezvous saw this host's own address, so there is no NAT in between. */
  nat: boolean | null;
  classic: NatReport['udp']['classic'];
  mapping: NatReport['udp']['mapping'];
  filtering: NatReport['udp']['filtering'];
  advice: string[];
  checkedAt: string;
}

/**
 * `homeport nat-check` against the agent's own rendezvous, once per start, from fresh ports: the user sees
 * in `status` what the router allows without running anything. It runs beside the punched port, never on
 * it, and a failed check only means no NAT line in the status.
 */
export class NatWatch {
  private started = false;
  private result: NatStatus | undefined;

  constructor(private readonly options: { logger: Logger; onResult: () => void }) {}

  /** Starts the check against `server`, unless one already ran or is running. */
  checkOnce(server: PublicAddress): void {
    if (this.started) return;
    this.started = true;
    checkNat({ servers: [server], tcp: true }).then((report) => this.record(report), (error: Error) => {
      this.options.logger.warn({ err: error.message }, 'NAT check failed');
    });
  }

  status(): NatStatus | undefined {
    return this.result;
  }

  private record(report: NatReport): void {
    const { nat, classic, mapping, filtering, notes } = report.udp;
    this.result = { server: report.server, nat, classic, mapping, filtering, advice: report.advice, checkedAt: new Date().toISOString() };
    this.options.logger.info({ server: report.server, classic, mapping, filtering, tcp: report.tcp, notes, ms: report.elapsedMs }, `NAT check: ${classic}; ${report.advice[0] ?? ''}`);
    this.options.onResult();
  }
}
