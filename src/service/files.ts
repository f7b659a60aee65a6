import { hasReregisterJob, type ServiceDescription } from './description.js';
import { launchdPlistName, launchdReregisterPlistName, renderLaunchdPlist, renderLaunchdReregisterPlist } from './launchd.js';
import {
  renderSystemdReregisterService,
  renderSystemdTimer,
  renderSystemdUnit,
  systemdReregisterServiceName,
  systemdServiceName,
  systemdTimerName,
} from './systemd.js';

/** One file a service installation writes: its name in the service manager's directory and its text. */
export interface ServiceFile {
  name: string;
  content: string;
}

/** Every file for a description on its platform: the daemon, then the re-register backstop if any. */
export function renderServiceFiles(d: ServiceDescription): ServiceFile[] {
  if (d.platform === 'macos') {
    const daemon = { name: launchdPlistName(d), content: renderLaunchdPlist(d) };
    if (!hasReregisterJob(d)) return [daemon];
    return [daemon, { name: launchdReregisterPlistName(d), content: renderLaunchdReregisterPlist(d) }];
  }
  const unit = { name: systemdServiceName(d), content: renderSystemdUnit(d) };
  if (!hasReregisterJob(d)) return [unit];
  return [
    unit,
    { name: systemdReregisterServiceName(d), content: renderSystemdReregisterService(d) },
    { name: systemdTimerName(d), content: renderSystemdTimer(d) },
  ];
}
