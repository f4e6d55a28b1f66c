/**
 * What the node's broker connection takes in. Anyone allowed to publish on the broker can write to the topics this
 * node watches (its own status, commands, announcements, acks, homeassistant/status), so each is hostile input:
 * - at most MAX_INBOUND_BYTES a message: asked of the broker in CONNECT (MQTT v5 Maximum Packet Size, so a
 *   200 MB message never reaches this process) and checked again before any handler parses it;
 * - a message that makes the node answer (a stale status it overwrites, Home Assistant asking for discovery)
 *   is answered at most once per `everyMs`, however many arrive.
 * Commands are 64 KB at most and the largest other message is a signed announcement of a few KB.
 */
export const MAX_INBOUND_BYTES = 256 << 10;

/** Lets one reaction through per interval; the rest are counted. */
export class ReactionLimit {
  private last = -Infinity;
  private trailing: NodeJS.Timeout | null = null;
  suppressed = 0;

  constructor(private readonly everyMs: number) {}

  take(now: number): boolean {
    if (now - this.last < this.everyMs) {
      this.suppressed++;
      return false;
    }
    this.last = now;
    return true;
  }

  /** Like `take`; a refused reaction runs `later` once when the interval ends, so the last of a burst is answered. */
  takeOrLater(now: number, later: () => void): boolean {
    if (this.take(now)) return true;
    this.trailing ??= setTimeout(() => ((this.trailing = null), later()), Math.max(0, this.last + this.everyMs - now)).unref();
    return false;
  }
}

/** What a status message on this node's own topic says, read only as far as it needs: state and bdSeq. */
export function statusClaim(payload: Buffer): { state: string | null; bdSeq: number | null } {
  try {
    const s = JSON.parse(payload.toString('utf8')) as { state?: unknown; bdSeq?: unknown } | null;
    return { state: typeof s?.state === 'string' ? s.state.slice(0, 32) : null, bdSeq: typeof s?.bdSeq === 'number' ? s.bdSeq : null };
  } catch {
    return { state: null, bdSeq: null }; // not ours to read: overwritten
  }
}
