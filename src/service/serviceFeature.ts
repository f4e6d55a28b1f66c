import type { Component, ContextFor } from '../core/index.js';
import { ServiceWatchdog, type CameraLiveness } from './serviceWatchdog.js';
import { SystemdNotifier } from './systemdNotifier.js';

/** The systemd service: READY, STATUS and WATCHDOG pings while the cameras live (nothing sent outside systemd). */
export function serviceComponents(ctx: ContextFor, cameras: () => CameraLiveness): Component[] {
  const { log } = ctx('service');
  return [new ServiceWatchdog(ctx('service'), SystemdNotifier.forProcess(log), cameras)];
}
