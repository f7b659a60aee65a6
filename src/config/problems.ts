/**
 * Collects every configuration problem before failing, so the user fixes them all in one go.
 * Each problem names the file and the key path: `agent.toml: whitelist.allow[2] "10.0.0.300/8" is not an IP or CIDR`.
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

export class Problems {
  private readonly list: string[] = [];
  constructor(private readonly file: string) {}

  add(key: string, message: string): void {
    this.list.push(`${this.file}: ${key} ${message}`);
  }

  get count(): number {
    return this.list.length;
  }

  throwIfAny(): void {
    if (this.list.length > 0) throw new ConfigError([...this.list]);
  }
}
