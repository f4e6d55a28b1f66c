import { join } from 'node:path';
import { Keyring, MessageVerifier, REFUSAL_REASONS, ReplayLedger, type SignedMessage, type TrustedKey } from '../crypto/index.js';
import type { OutpostConfig } from '../config/index.js';
import { deploymentSchema, MAX_DEPLOYMENT_BYTES, type Deployment } from './document.js';

export const DEPLOY_ACTIONS = ['create', 'confirm', 'rollback'] as const;
export type DeployAction = (typeof DEPLOY_ACTIONS)[number];

/** Why a deployment message was refused: the verifier's reasons, and those of the document itself. */
export const DEPLOY_REFUSALS = [
  ...REFUSAL_REASONS,
  'too-large',
  'unknown-action',
  'path-escape',
  'bad-document',
  'not-targeted',
  'busy',
  'unknown-deployment',
  'sha256-mismatch',
] as const;
export type DeployRefusal = (typeof DEPLOY_REFUSALS)[number];

export type Intake =
  | { ok: true; action: 'create'; doc: Deployment; operator: TrustedKey }
  | { ok: true; action: 'confirm' | 'rollback'; id: string; operator: TrustedKey }
  | { ok: false; reason: DeployRefusal; detail: string; authentic: boolean };

/**
 * Opens what arrives on `<base>/<device>/deploy/<action>`, cheapest check first: size, JSON, then the signed
 * message as commands are (operator key, this device, clock window, signature), then the replay ledger in the
 * state folder (a captured deployment never runs twice, even after a restart), and last the document itself.
 */
export class DeployIntake {
  private readonly ledger: ReplayLedger;
  private readonly verifier: MessageVerifier;

  constructor(config: Readonly<OutpostConfig>, stateDir: string, device: string, now: () => number) {
    const windowMs = config.telemetry.mqtt!.commandWindowSeconds * 1000;
    this.ledger = new ReplayLedger(join(stateDir, 'deploy-replay.json'), windowMs);
    this.verifier = new MessageVerifier({
      keyring: new Keyring(config.keyring),
      purpose: 'deployment',
      role: 'operator',
      target: device,
      windowMs,
      now,
      replay: this.ledger,
    });
  }

  /** A problem to log when the ledger was unreadable (everything signed until now + the window is refused). */
  load(now: number): string | null {
    return this.ledger.load(now);
  }

  open(action: string, payload: Buffer): Intake {
    if (payload.length > MAX_DEPLOYMENT_BYTES) return refused('too-large', `${payload.length} bytes; at most ${MAX_DEPLOYMENT_BYTES}`);
    if (!(DEPLOY_ACTIONS as readonly string[]).includes(action)) return refused('unknown-action', `actions: ${DEPLOY_ACTIONS.join(', ')}`);
    let message: unknown;
    try {
      message = JSON.parse(payload.toString('utf8'));
    } catch {
      return refused('malformed', 'not JSON');
    }
    const verdict = this.verifier.verify(message);
    if (!verdict.ok) return refused(verdict.reason, verdict.detail, verdict.authentic);
    const m: SignedMessage = verdict.message;
    if (m.action !== action) return refused('malformed', `published on deploy/${action} but signed for ${m.action}`, true);
    if (action !== 'create') {
      const id = m.args.id;
      return typeof id === 'string'
        ? { ok: true, action: action as 'confirm' | 'rollback', id, operator: verdict.signer }
        : refused('bad-document', 'args.id', true);
    }
    const escape = escapingName(m.args.files);
    if (escape) return refused('path-escape', `files: ${JSON.stringify(escape)} would be stored outside the state folder`, true);
    const doc = deploymentSchema.safeParse(m.args);
    if (!doc.success) {
      const i = doc.error.issues[0];
      return refused('bad-document', `${i.path.join('.') || '(document)'}: ${i.message}`, true);
    }
    return { ok: true, action: 'create', doc: doc.data, operator: verdict.signer };
  }
}

const refused = (reason: DeployRefusal, detail: string, authentic = false): Intake => ({ ok: false, reason, detail, authentic });

/** A file name with a folder or `..` in it (refused as such, before the schema's general word on names). */
function escapingName(files: unknown): string | null {
  if (!Array.isArray(files)) return null;
  for (const f of files) {
    const name = (f as { name?: unknown } | null)?.name;
    if (typeof name === 'string' && (name.includes('/') || name.includes('\\') || name.includes('..') || name.startsWith('.'))) return name;
  }
  return null;
}
