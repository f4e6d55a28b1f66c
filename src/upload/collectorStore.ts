import type { ItemHeader } from './batch.js';
import { ItemStore, type PutOutcome, type StoreLimits } from './itemStore.js';

/** One opened item of a batch, on its way to the store. */
export interface OpenedItem {
  header: ItemHeader;
  payload: Buffer;
  /** sha256 of the sealed envelope it came in (kept beside the item; duplicates are judged on content) */
  envelopeSha256: Buffer;
}

/** Per item: stored, already there, a conflict, or the error that refused it (StoreRefusal, PayloadError, errno). */
export type ItemOutcome = PutOutcome | Error;

/** The store is slow or away (a database restarting): nothing of the batch was kept; the device tries again later. */
export class StoreBusy extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'StoreBusy';
  }
}

/**
 * Where a collector keeps what it opened: the folder store (ItemStore) or PostgreSQL (PgItemStore). `putAll`
 * resolves only once every outcome it reports is durable (a stored item is committed before it is acked), and
 * rejects with StoreBusy when nothing could be kept.
 */
export interface CollectorStore {
  readonly kind: string;
  putAll(device: string, items: readonly OpenedItem[]): Promise<ItemOutcome[]>;
  close(): Promise<void>;
}

/** The folder store behind the collector's interface: each item written (and synced) on its own. */
export class FolderStore implements CollectorStore {
  readonly kind = 'folder';
  private readonly store: ItemStore;

  constructor(out: string, limits: Partial<StoreLimits> = {}) {
    this.store = new ItemStore(out, limits);
  }

  putAll(device: string, items: readonly OpenedItem[]): Promise<ItemOutcome[]> {
    return Promise.resolve(
      items.map((i) => {
        try {
          return this.store.put(device, i.header, i.payload);
        } catch (err) {
          return err instanceof Error ? err : new Error(String(err));
        }
      }),
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
