/**
 * Collects every configuration problem before failing, so the user fixes them all in one go.
 * Each problem names the file and the key path: `agent.toml: whitelist.allow[2] "10.0.0.300/8" is not an IP or CIDR`.
 * It lives in common because the admin key store and the whitelist store report their files' problems the same way.
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}
