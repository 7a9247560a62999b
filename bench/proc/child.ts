/**
 * What the bench's child processes share: their configuration (JSON in BENCH_CHILD_CONFIG), the one line that
 * tells the parent they are ready (`READY {json}` on stdout), and a clean stop on SIGTERM / SIGINT.
 */
export const READY_PREFIX = 'READY ';

export function childConfig<T>(): T {
  const raw = process.env.BENCH_CHILD_CONFIG;
  if (!raw) throw new Error('BENCH_CHILD_CONFIG is unset: this process is started by bench/main.ts');
  return JSON.parse(raw) as T;
}

export function ready(details: Record<string, unknown> = {}): void {
  process.stdout.write(`${READY_PREFIX}${JSON.stringify(details)}\n`);
}

/** Runs `stop` once on the first SIGTERM or SIGINT, then exits; a second signal exits at once. */
export function onStop(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`stop failed: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  // The parent went away (killed): do not outlive it.
  process.on('disconnect', handler);
}

export function fail(err: unknown): never {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}
