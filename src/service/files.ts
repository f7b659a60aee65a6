import path from 'node:path';
import { hasReregisterJob, mayHaveReregisterJob, type ReregisteringService, type ServiceDescription, type ServiceIdentity, type ServicePlatform } from './description.js';
import { launchdPlistName, launchdReregisterPlistName, renderLaunchdPlist, renderLaunchdReregisterPlist } from './launchd.js';
import { NEWSYSLOG_DIR, newsyslogConfName, renderNewsyslogConf } from './newsyslog.js';
import {
  renderSystemdReregisterService,
  renderSystemdTimer,
  renderSystemdUnit,
  systemdReregisterServiceName,
  systemdServiceName,
  systemdTimerName,
} from './systemd.js';

export const SYSTEMD_DIR = '/etc/systemd/system';
export const LAUNCH_DAEMONS_DIR = '/Library/LaunchDaemons';

/** One file a service installation writes: the directory it goes to on the target system, its name and text. */
export interface ServiceFile {
  directory: string;
  name: string;
  content: string;
}

/** A kind of file a platform's installation has; the backstop kinds exist only with the daily re-register job. */
type FileKind = { directory: string; name: (id: ServiceIdentity) => string } & (
  | { backstop: false; render: (d: ServiceDescription) => string }
  | { backstop: true; render: (d: ReregisteringService) => string }
);

const FILE_KINDS: Record<ServicePlatform, FileKind[]> = {
  macos: [
    { directory: LAUNCH_DAEMONS_DIR, name: launchdPlistName, backstop: false, render: renderLaunchdPlist },
    { directory: LAUNCH_DAEMONS_DIR, name: launchdReregisterPlistName, backstop: true, render: renderLaunchdReregisterPlist },
    { directory: NEWSYSLOG_DIR, name: newsyslogConfName, backstop: false, render: renderNewsyslogConf },
  ],
  linux: [
    { directory: SYSTEMD_DIR, name: systemdServiceName, backstop: false, render: renderSystemdUnit },
    { directory: SYSTEMD_DIR, name: systemdReregisterServiceName, backstop: true, render: renderSystemdReregisterService },
    { directory: SYSTEMD_DIR, name: systemdTimerName, backstop: true, render: renderSystemdTimer },
  ],
};

function renderKind(kind: FileKind, d: ServiceDescription): string | undefined {
  if (!kind.backstop) return kind.render(d);
  return hasReregisterJob(d) ? kind.render(d) : undefined;
}

/** Every file for a description on its platform: the daemon, the re-register backstop if any, log rotation on macOS. */
export function renderServiceFiles(d: ServiceDescription): ServiceFile[] {
  return FILE_KINDS[d.platform].flatMap((kind) => {
    const content = renderKind(kind, d);
    return content === undefined ? [] : [{ directory: kind.directory, name: kind.name(d), content }];
  });
}

function pathsOf(id: ServiceIdentity, kinds: FileKind[]): string[] {
  return kinds.map((kind) => path.posix.join(kind.directory, kind.name(id)));
}

/**
 * The absolute paths of the files install-service writes for a program, found from its name alone: uninstall
 * removes the backstop's files too (the default), whatever the config says now, so none is left behind.
 */
export function serviceFilePaths(id: ServiceIdentity, withBackstop = mayHaveReregisterJob(id)): string[] {
  return pathsOf(id, FILE_KINDS[id.platform].filter((kind) => !kind.backstop || withBackstop));
}

/** The files of the daily re-register backstop alone (none for the rendezvous). */
export function reregisterJobPaths(id: ServiceIdentity): string[] {
  return mayHaveReregisterJob(id) ? pathsOf(id, FILE_KINDS[id.platform].filter((kind) => kind.backstop)) : [];
}
