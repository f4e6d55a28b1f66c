import { SealedEnvelope, type ItemSealer, type NodeKeys } from '../crypto/index.js';
import type { ItemHeader } from './batch.js';

/**
 * Reseals an item of an outbox made before epochs (envelope version 1, which the board's own keys open: the very
 * reason for version 2) as a version-2 item of `epoch` under its new seq; null when it does not open (sealed to
 * another collector key).
 */
export function resealLegacy(keys: NodeKeys, collectorBox: Uint8Array, sealer: ItemSealer, epoch: string) {
  const v1 = new SealedEnvelope(keys.box);
  return (envelope: Buffer, seq: number): Buffer | null => {
    try {
      const { header, payload } = v1.open<ItemHeader & { v?: number }>(envelope, collectorBox);
      const { v: _v, ...rest } = header;
      return sealer.seal({ ...rest, epoch, seq }, payload);
    } catch {
      return null;
    }
  };
}
