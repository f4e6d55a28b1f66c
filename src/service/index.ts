export { SystemdNotifier, type NotifyFields } from './systemdNotifier.js';
export { ServiceWatchdog, type CameraLiveness } from './serviceWatchdog.js';
export { serviceComponents } from './serviceFeature.js';
