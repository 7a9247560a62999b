/**
 * What global setup started, stopped in reverse order by global teardown (which runs in the same process).
 * Kept on globalThis because Jest loads setup and teardown as separate modules.
 */
type Cleanup = { name: string; fn: () => Promise<void> };
const KEY = '__vpsieRunbookCleanups';
const registry = globalThis as unknown as Record<string, Cleanup[] | undefined>;

export function registerCleanup(name: string, fn: () => Promise<void>): void {
  (registry[KEY] ??= []).push({ name, fn });
}

export async function runCleanups(): Promise<void> {
  const cleanups = registry[KEY] ?? [];
  registry[KEY] = [];
  for (const { name, fn } of cleanups.reverse()) {
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`[test harness] stopping ${name} failed: ${(err as Error).message}\n`);
    }
  }
}
