/** Polls `check` until it holds (at most `tries` × `everyMs`), then fails with `what`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what = 'the condition', tries = 200, everyMs = 50): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}`);
}
