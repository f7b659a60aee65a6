import { err, ok, type Result } from './result.js';

/** A key id: 12 lower-case hex characters (6 random bytes); names the key in the key store and in logs. */
export const KEY_ID_PATTERN = /^[0-9a-f]{12}$/;
/** A key secret: 32 random bytes in base64url without padding, 43 characters. Never logged. */
export const KEY_SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** An admin API key: what the CLI signs requests with and what the key store hands out. */
export interface AdminKey {
  id: string;
  secret: string;
}

/**
 * "<id>:<secret>" as `homeport keygen` prints it. The error never echoes the text: it holds a secret even
 * when it is a bad one. It reads as the rest of a sentence that names where the key came from.
 */
export function parseAdminKey(text: string): Result<AdminKey> {
  const fix = 'write the "<id>:<secret>" that "homeport keygen --config <file>" printed (run it again for a new key)';
  const [id = '', secret, ...rest] = text.trim().split(':');
  if (secret === undefined || rest.length > 0) return err(`is not "<id>:<secret>"; ${fix}`);
  if (!KEY_ID_PATTERN.test(id)) return err(`has a bad id (it must be 12 lower-case hex characters); ${fix}`);
  if (!KEY_SECRET_PATTERN.test(secret)) return err(`has a bad secret (it must be 43 base64url characters); ${fix}`);
  return ok({ id, secret });
}
