import { unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isMap, parseDocument, type Document } from 'yaml';
import { ConfigError, formatProblem, loadConfig, type OutpostConfig } from '../config/index.js';
import { errorMessage } from '../errors.js';
import type { Deployment } from './document.js';
import { writeDurable } from '../durableFile.js';

export type ConfigChange = NonNullable<Deployment['config']>;

/** The config file a deployment would leave: the full file it carries, or the running file with its patch merged in. */
export function nextConfigText(current: string, change: ConfigChange): string {
  if ('file' in change) return change.file;
  const doc = parseDocument(current);
  mergePatch(doc, [], change.patch);
  return doc.toString({ lineWidth: 0 }); // no folding: flow maps stay on their line
}

/** RFC 7396 on the YAML document itself, so the operator's comments and layout survive: null deletes, maps merge, anything else replaces. */
function mergePatch(doc: Document, at: string[], patch: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(patch)) {
    const path = [...at, key];
    if (value === null) doc.deleteIn(path);
    else if (isPlainObject(value) && isMap(doc.getIn(path, true))) mergePatch(doc, path, value);
    else doc.setIn(path, doc.createNode(withoutNulls(value)));
  }
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function withoutNulls(v: unknown): unknown {
  if (!isPlainObject(v)) return v;
  return Object.fromEntries(
    Object.entries(v)
      .filter(([, x]) => x !== null)
      .map(([k, x]) => [k, withoutNulls(x)]),
  );
}

/** The candidate's own file: beside the config file (same file system, so putting it in place is one rename). */
export function candidatePath(configFile: string): string {
  return join(dirname(configFile), `.${basename(configFile)}.deploy-next`);
}

/**
 * Writes the candidate beside the config file and checks it with the daemon's own loader (relative paths resolve
 * as they will once it is in place). Returns its problems as `deployment <id>:LINE:COL: path: message`, and
 * refuses a change of what the board's deployment state hangs on (its state folder, its device id).
 */
export function validateCandidate(configFile: string, text: string, id: string, running: Readonly<OutpostConfig>): string[] {
  const file = candidatePath(configFile);
  writeDurable(file, text);
  let next: Readonly<OutpostConfig>;
  try {
    next = loadConfig(file).config;
  } catch (err) {
    unlinkSync(file);
    if (!(err instanceof ConfigError)) return [`deployment ${id}: ${errorMessage(err)}`];
    return err.problems.map((p) => formatProblem({ ...p, file: p.file === file ? `deployment ${id}` : p.file }));
  }
  const problems: string[] = [];
  if (next.node.stateDir !== running.node.stateDir)
    problems.push(`deployment ${id}: node.stateDir: a deployment cannot move the state folder (its own state lives there)`);
  if (deviceId(next) !== deviceId(running)) problems.push(`deployment ${id}: node.name / telemetry.mqtt.deviceId: a deployment cannot change the device id`);
  if (!next.telemetry.mqtt) problems.push(`deployment ${id}: telemetry.mqtt: a deployment cannot take the board off the broker it is deployed through`);
  if (problems.length > 0) unlinkSync(file);
  return problems;
}

const deviceId = (c: Readonly<OutpostConfig>) => c.telemetry.mqtt?.deviceId ?? c.node.name;
