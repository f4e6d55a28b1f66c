export { exporterCommand, EXPORTER_DEFAULTS, type ExporterOptions } from './exporterCommand.js';
