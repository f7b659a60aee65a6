import { ConfigError } from '../common/config-error.js';

/** Collects every problem of one config file (see ConfigError) and throws them together. */
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
