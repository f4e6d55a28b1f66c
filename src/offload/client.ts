import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { SealedEnvelope, type NodeKeys } from '../crypto/index.js';
import { OutpostError, errorMessage } from '../errors.js';
import type { Frame, PipelineOutput } from '../types.js';
import type { Peer } from './peerTable.js';
import type { FileRequest, Refusal, RunAnswer, RunRequest, StageSpec } from './protocol.js';

/** A peer's answer is a sealed result (boxes and text, a few KB) or a refusal: anything larger is not one. */
const MAX_ANSWER_BYTES = 4 << 20;

/** A peer said no: its status and, to a key it trusts, why and which files it lacks. */
export class PeerRefused extends OutpostError {
  constructor(
    readonly peer: string,
    readonly status: number,
    readonly refusal: Partial<Refusal>,
  ) {
    super('OUTPOST_E_REFUSED', `${peer} answered ${status} ${refusal.reason ?? ''}${refusal.detail ? `: ${refusal.detail}` : ''}`);
  }
}

function readRefusal(bytes: Buffer): Partial<Refusal> {
  try {
    const r = JSON.parse(bytes.toString('utf8').slice(0, 4096)) as unknown;
    return r && typeof r === 'object' ? (r as Partial<Refusal>) : {};
  } catch {
    return {};
  }
}

/**
 * Sends one frame to a peer and opens its answer: sealed to the peer's key with this node's (agreement cached
 * per peer), on a keep-alive connection, within the placement timeout. Checks that the answer came from that
 * peer's key and is for this message. Also sends a peer a file it lacks, when it takes them.
 */
export class OffloadClient {
  private envelope: SealedEnvelope | null = null;
  private readonly agents = new Map<string, Agent>();

  constructor(
    private readonly deviceId: string,
    private readonly keys: () => NodeKeys,
    private readonly timeoutMs: () => number,
  ) {}

  /** `totalMs`: here, from sealing to the opened answer; the peer's own part is `processMs`. */
  async run(
    peer: Peer,
    pipeline: string,
    stages: StageSpec[],
    frame: Frame,
    regions: PipelineOutput | null,
  ): Promise<{ output: PipelineOutput; inferMs: number; processMs: number; totalMs: number }> {
    const started = performance.now();
    const header: RunRequest = { purpose: 'offload-run', ...this.stamp(), pipeline, stages, regions };
    const answer = await this.exchange<RunAnswer>(peer, '/v1/run', { ...header }, frame.data, this.timeoutMs());
    if (answer.purpose !== 'offload-result' || answer.messageId !== header.messageId)
      throw new OutpostError('OUTPOST_E_REFUSED', `${peer.name} answered another message`);
    return { output: answer.output, inferMs: answer.inferMs, processMs: answer.processMs, totalMs: performance.now() - started };
  }

  /** Sends a file a peer lacks; its bytes are checked there against the sha256. */
  async sendFile(peer: Peer, sha256: string, bytes: Uint8Array): Promise<void> {
    const header: FileRequest = { purpose: 'offload-file', ...this.stamp(), sha256 };
    const answer = await this.exchange<{ purpose: string; sha256: string }>(peer, '/v1/files', { ...header }, bytes, Math.max(this.timeoutMs(), 60_000));
    if (answer.purpose !== 'offload-file-stored' || answer.sha256 !== sha256)
      throw new OutpostError('OUTPOST_E_REFUSED', `${peer.name} did not confirm the file`);
  }

  close(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }

  private stamp() {
    return { sender: this.deviceId, messageId: randomBytes(12).toString('base64url'), sentAt: Date.now() };
  }

  private async exchange<A>(peer: Peer, path: string, header: Record<string, unknown>, payload: Uint8Array, timeoutMs: number): Promise<A> {
    this.envelope ??= new SealedEnvelope(this.keys().box);
    const { status, bytes } = await this.post(peer, path, this.envelope.seal(header, payload, peer.box), timeoutMs);
    if (status !== 200) throw new PeerRefused(peer.name, status, readRefusal(bytes));
    const opened = this.envelope.open<A>(bytes);
    if (Buffer.compare(Buffer.from(opened.sender, 'base64'), Buffer.from(peer.box)) !== 0)
      throw new OutpostError('OUTPOST_E_REFUSED', `the answer was not sealed by ${peer.name}`);
    return opened.header;
  }

  private post(peer: Peer, path: string, body: Buffer, timeoutMs: number): Promise<{ status: number; bytes: Buffer }> {
    let agent = this.agents.get(peer.url);
    if (!agent) this.agents.set(peer.url, (agent = new Agent({ keepAlive: true, maxSockets: 8 })));
    const url = new URL(path, peer.url);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        { method: 'POST', agent, timeout: timeoutMs, headers: { 'content-type': 'application/octet-stream', 'content-length': body.length } },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`answered more than ${MAX_ANSWER_BYTES} bytes`));
            else chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.setNoDelay(true); // one small write each way: Nagle would only hold it back
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => reject(new OutpostError('OUTPOST_E_UNREACHABLE', `${peer.name} at ${peer.url}: ${errorMessage(err)}`)));
      req.end(body);
    });
  }
}
