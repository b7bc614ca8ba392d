/**
 * Polls `probe` (sync or async) until it gives something other than undefined, null or false, and returns
 * that; fails naming `what` after `timeoutMs`.
 */
export async function until<T>(probe: () => T | Promise<T>, what = 'condition', timeoutMs = 5000): Promise<Exclude<T, undefined | null | false>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== null && v !== false) return v as Exclude<T, undefined | null | false>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
