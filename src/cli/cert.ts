import { parseAgentConfig } from '../config/agent.js';
import type { TlsConfig } from '../config/agent-types.js';
import { parseRendezvousConfig } from '../config/rendezvous.js';
import { parseTomlTable, readConfigText } from '../config/shared.js';
import { spanInWords } from '../common/duration.js';
import type { CertificateInfo } from '../tls/cert-info.js';
import { readStoredCertificateInfo } from '../tls/stored-certificate.js';
import { type Command, EXIT, parseFlags, requireConfigFlag, UsageError } from './command.js';

export const certCommand: Command = {
  name: 'cert',
  summary: 'show the TLS certificate: issuer, names, expiry and the next renewal',
  help: `Usage: homeport cert status --config <agent.toml|rendezvous.toml> [--json]

Reads the certificate the agent or the rendezvous serves from its [tls] certDir (or tls.certFile) and
prints who issued it, the names it covers, when it expires and when homeport renews it: once a third of
its lifetime remains for mode "acme", 30 days before expiry for "selfsigned"; never for "files".

Options:
  -c, --config <file>   the agent's or the rendezvous's configuration
  --json                print the facts as JSON
  -h, --help            show this help

Exit codes: 0 a current certificate, 1 none yet, unreadable or expired, 2 usage or config error.`,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } }, true);
    if (values.help) {
      console.log(this.help);
      return EXIT.ok;
    }
    const [action, ...extra] = positionals;
    if (action !== 'status') throw new UsageError(action === undefined ? 'say what to show: status' : `unknown action "${action}"; the only one is status`);
    if (extra.length > 0) throw new UsageError(`unexpected "${extra[0]}"`);
    const tls = await loadTls(requireConfigFlag(values.config));
    const stored = await readStoredCertificateInfo(tls);
    if (!stored.ok) {
      console.error(`homeport cert: ${stored.error}`);
      return EXIT.failure;
    }
    const now = new Date();
    const expired = Date.parse(stored.value.info.notAfter) <= now.getTime();
    if (values.json) console.log(JSON.stringify({ mode: tls.mode, file: stored.value.file, ...stored.value.info, expired }, null, 2));
    else console.log(formatCertStatus(tls, stored.value.file, stored.value.info, now));
    return expired ? EXIT.failure : EXIT.ok;
  },
};

/** [tls] of either program: an agent.toml has an [agent] table, a rendezvous.toml [[agent]] entries. */
async function loadTls(file: string): Promise<TlsConfig> {
  const text = await readConfigText(file);
  const isRendezvous = Array.isArray(parseTomlTable(text, file).agent);
  return isRendezvous ? parseRendezvousConfig(text, file, process.env).tls : parseAgentConfig(text, file, process.env).tls;
}

/** Pure: one fact a line. */
export function formatCertStatus(tls: TlsConfig, file: string, info: CertificateInfo, now: Date): string {
  const relative = (iso: string): string => {
    const ms = Date.parse(iso) - now.getTime();
    return ms >= 0 ? `in ${spanInWords(ms)}` : `${spanInWords(-ms)} ago`;
  };
  const mode = tls.mode === 'acme' ? `acme (${tls.acme.directory}, ${tls.acme.challenge})` : tls.mode;
  const renewal = info.renewAt === undefined ? 'not renewed by homeport: replace the files before expiry'
    : Date.parse(info.renewAt) <= now.getTime() ? `due now (since ${info.renewAt}); the running program renews it` : `${info.renewAt} (${relative(info.renewAt)})`;
  const lines = [
    ['mode', mode],
    ['file', file],
    ['issuer', info.issuer],
    ['names', info.names.join(', ')],
    ['expires', `${info.notAfter} (${Date.parse(info.notAfter) <= now.getTime() ? `EXPIRED ${relative(info.notAfter)}` : relative(info.notAfter)})`],
    ['next renewal', renewal],
  ];
  return lines.map(([key, value]) => `${key!.padEnd(12)}  ${value}`).join('\n');
}
