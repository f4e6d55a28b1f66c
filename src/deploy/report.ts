import { signAnswer, type NodeKeys, type SignedAnswer, type AnswerFields } from '../crypto/index.js';
import type { DeployStateData } from './deployState.js';
import type { ShadowFigures } from './shadowRun.js';

/** What a board says of its latest deployment: the step it is at, or how it ended, and why. */
export interface ReportBody {
  id: string;
  step: string;
  result: 'running' | 'passed' | 'failed';
  reason?: string;
  detail?: string;
  problems?: string[];
  shadow?: ShadowFigures[];
  at: string;
}

/** The report, signed by this device like a command answer (action `deployment`, request = the deployment id). */
export function signedReport(d: DeployStateData, device: string, keys: NodeKeys | null): { body: ReportBody; signed: SignedAnswer | AnswerFields } | null {
  const body = reportBody(d);
  if (!body) return null;
  const fields: AnswerFields = {
    device,
    action: 'deployment',
    request: body.id,
    status: body.result === 'failed' ? 'error' : 'ok',
    data: body,
    answeredAt: Date.parse(body.at),
  };
  return { body, signed: keys ? signAnswer(fields, keys.sign) : fields };
}

function reportBody(d: DeployStateData): ReportBody | null {
  const p = d.pending;
  if (p) return { id: p.id, step: p.step, result: 'running', ...(p.shadow ? { shadow: p.shadow } : {}), at: new Date(p.at).toISOString() };
  const l = d.last;
  if (!l) return null;
  const body: ReportBody = { id: l.id, step: l.outcome, result: l.outcome === 'confirmed' ? 'passed' : 'failed', at: new Date(l.at).toISOString() };
  return {
    ...body,
    ...(l.reason ? { reason: l.reason } : {}),
    ...(l.detail ? { detail: l.detail } : {}),
    ...(l.problems ? { problems: l.problems } : {}),
    ...(l.shadow ? { shadow: l.shadow } : {}),
  };
}
