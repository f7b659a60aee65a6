import tls from 'node:tls';

/** What a certificate source hands out: a PEM private key and the PEM chain served with it (leaf first). */
export interface TlsMaterial {
  key: string;
  cert: string;
}

/**
 * TLS 1.2 suites of Mozilla's "intermediate" profile (v5.7) without the DHE ones: ECDHE key exchange with
 * an AEAD cipher only. Node's default list still offers CBC-SHA1 suites and RSA key exchange.
 * No TLS 1.3 suite is named, so Node keeps OpenSSL's TLS 1.3 defaults (all AEAD, nothing to prune).
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** The policy carried by a SecureContext. */
const CONTEXT_POLICY = {
  minVersion: 'TLSv1.2',
  ciphers: TLS12_CIPHERS,
  ecdhCurve: 'X25519:P-256:P-384',
  // Mozilla intermediate lets the client choose: every offered suite is strong, and a phone without AES
  // hardware knows best that ChaCha20 is faster for it.
  honorCipherOrder: false,
} as const satisfies tls.SecureContextOptions;

/**
 * Options for tls.Server / tls.TLSSocket / server.setSecureContext: the context policy plus ALPN.
 * Note that tls.createServer ignores a `secureContext` option; a server built with these options needs
 * `key` and `cert` too, or use a per-socket `new tls.TLSSocket(socket, { isServer: true, secureContext })`.
 */
export const TLS_SERVER_OPTIONS: Readonly<tls.TlsOptions> = Object.freeze({
  ...CONTEXT_POLICY,
  ALPNProtocols: ['http/1.1'],
});

/** A SecureContext holding `material` under homeport's fixed TLS policy. Throws if OpenSSL rejects the material. */
export function createSecureContext(material: TlsMaterial): tls.SecureContext {
  return tls.createSecureContext({ ...CONTEXT_POLICY, key: material.key, cert: material.cert });
}
