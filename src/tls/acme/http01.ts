/** Publishes HTTP-01 key authorizations where the CA will fetch them. */
export interface Http01Responder {
  /** Serve `keyAuthorization` at http://<hostname>/.well-known/acme-challenge/<token>; resolves once it is being served. */
  set(hostname: string, token: string, keyAuthorization: string): Promise<void>;
  unset(hostname: string, token: string): Promise<void>;
}
