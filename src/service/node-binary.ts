/** Which node binary a service file names: one that survives upgrades of node where that is possible. */

export interface NodeBinaryChoice {
  /** The path the service files name. */
  path: string;
  /** The file that path leads to now (what the macOS application firewall must allow). */
  realPath: string;
  /** Why the choice may not last, printed with the plan. */
  note?: string;
}

/** A Homebrew keg: <prefix>/Cellar/<formula>/<version>/<path inside the keg>. */
const HOMEBREW_KEG = /^(?<prefix>\/.+)\/Cellar\/(?<formula>[^/]+)\/[^/]+\/(?<inside>.+)$/;

/**
 * The real node binary (realpath of process.execPath: a symlink such as a distribution's alternatives can
 * move), except in a Homebrew keg: its path holds the version and is deleted by `brew upgrade` (plus
 * `brew cleanup`), while <prefix>/opt/<formula> is Homebrew's stable link to whatever version is installed.
 * The opt path is used only when it leads to this very binary; `realpath` answers undefined for a path that
 * does not resolve.
 */
export function chooseNodeBinary(execPath: string, realpath: (filePath: string) => string | undefined): NodeBinaryChoice {
  const realPath = realpath(execPath) ?? execPath;
  const keg = HOMEBREW_KEG.exec(realPath)?.groups;
  if (!keg) return { path: realPath, realPath };
  const stable = `${keg.prefix}/opt/${keg.formula}/${keg.inside}`;
  const stableTarget = realpath(stable);
  if (stableTarget === realPath) return { path: stable, realPath };
  const why = stableTarget === undefined ? 'does not exist' : `leads to another node (${stableTarget})`;
  return {
    path: realPath,
    realPath,
    note: `node is ${realPath}, inside Homebrew's Cellar, which "brew upgrade" replaces; Homebrew's stable link ${stable} ${why}, so the service names the Cellar path: run install-service again after upgrading node`,
  };
}
