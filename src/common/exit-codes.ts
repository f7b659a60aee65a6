/** Exit codes shared by every command, and by the service files that tell the service manager which exits to restart after. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;
