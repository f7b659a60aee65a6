import { err, ok, type Result } from '../common/result.js';

/**
 * What an admin key may do. `status:read` sees the status and the whitelist; `whitelist:write` changes
 * the whitelist (add, remove, allow-me). A key holds one or both.
 */
export const SCOPES = ['status:read', 'whitelist:write'] as const;
export type Scope = (typeof SCOPES)[number];

export function isScope(text: unknown): text is Scope {
  return (SCOPES as readonly unknown[]).includes(text);
}

/** Parses "status:read,whitelist:write" (the keygen --scopes flag): known names, no duplicates, at least one. */
export function parseScopes(text: string): Result<Scope[]> {
  const names = text.split(',').map((name) => name.trim());
  const unknown = names.find((name) => !isScope(name));
  if (unknown !== undefined) {
    return err(`"${unknown === '' ? text : unknown}" is not a scope; write one or both of ${SCOPES.join(', ')}, separated by a comma`);
  }
  return ok([...new Set(names)] as Scope[]);
}
