export { BoardSensors, type SensorSnapshot, type BoardFamily, type BoardSensorOptions } from './boardSensors.js';
export { Governor, chooseThresholds, type Transition, type GovernorState, type Thresholds } from './governor.js';
export { decodeThrottled, type ThrottleState, type ThrottleFlags } from './raspberryPi.js';
export { type CommandRunner } from './sysfs.js';
export type { ThermalReading, TripPoint } from './thermal.js';
export type { PowerRail } from './jetson.js';
export type { PowerSupplyReading } from './powerSupply.js';
export { PowerMonitor, powerComponents } from './powerMonitor.js';
