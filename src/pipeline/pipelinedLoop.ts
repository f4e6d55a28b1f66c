/**
 * Keeps up to `depth` jobs in flight: while one frame is in post-processing or waiting on the inference
 * thread, the next is already decoded and queued there, so the inference thread never idles. Completions
 * are delivered in the order the jobs were taken.
 */
export async function runPipelined<J, R>(
  next: () => Promise<J | null>,
  work: (job: J) => Promise<R>,
  deliver: (job: J, outcome: { ok: true; value: R } | { ok: false; error: unknown }) => void,
  depth: number,
): Promise<void> {
  const inflight = new Set<Promise<void>>();
  let inOrder: Promise<void> = Promise.resolve();
  for (;;) {
    while (inflight.size >= depth) await Promise.race(inflight);
    const job = await next();
    if (job === null) break;
    const running = work(job).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );
    inOrder = inOrder.then(async () => deliver(job, await running));
    const tracked: Promise<void> = inOrder.finally(() => inflight.delete(tracked));
    inflight.add(tracked);
  }
  await inOrder;
}
