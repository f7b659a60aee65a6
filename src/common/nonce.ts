import { randomBytes } from 'node:crypto';

/** Random bytes in a nonce (the control handshake's and an admin request's); sent as base64url. */
export const NONCE_BYTES = 16;
/** A nonce as sent: NONCE_BYTES in base64url without padding, 22 characters. */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/** A fresh nonce: NONCE_BYTES random bytes, base64url. */
export function randomNonce(): string {
  return randomBytes(NONCE_BYTES).toString('base64url');
}
