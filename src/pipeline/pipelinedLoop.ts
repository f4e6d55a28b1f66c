/**
 * Keeps up to `depth` jobs in flight: while one frame is in post-processing or waiting on the inference
 * thread, the next is already decoded and queued there, so the inference thread never idles. Completions
 * are delivered in the order the jobs were taken, except jobs `ordered` says are not (frames on a peer):
 * those are delivered when they finish, so a slow peer holds only its own slot, never the frames behind it.
 */
export async function runPipelined<J, R>(
  next: () => Promise<J | null>,
  work: (job: J) => Promise<R>,
  deliver: (job: J, outcome: { ok: true; value: R } | { ok: false; error: unknown }) => void,
  depth: number | (() => number),
  ordered: (job: J) => boolean = () => true,
): Promise<void> {
  const limit = typeof depth === 'number' ? () => depth : depth;
  const inflight = new Set<Promise<void>>();
  let inOrder: Promise<void> = Promise.resolve();
  for (;;) {
    while (inflight.size >= limit()) await Promise.race(inflight);
    const job = await next();
    if (job === null) break;
    const running = work(job).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    let delivered: Promise<void>;
    if (ordered(job)) delivered = inOrder = inOrder.then(async () => deliver(job, await running));
    else delivered = running.then((outcome) => deliver(job, outcome));
    const tracked: Promise<void> = delivered.finally(() => inflight.delete(tracked));
    inflight.add(tracked);
  }
  await Promise.all([inOrder, ...inflight]);
}
