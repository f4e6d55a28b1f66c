export { sensorInventory, type SensorEntry } from './sensorInventory.js';
