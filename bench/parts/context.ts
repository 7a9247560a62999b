/** What every part gets: the running stack, the options, progress on stderr, and whether to stop. */
import type { Stack } from '../stack';

export interface PartContext {
  stack: Stack;
  progress: (line: string) => void;
  stopping: () => boolean;
}

/** One row of the table (and of the JSON's `figures`). */
export interface Figure {
  id: string;
  part: 'diagnosis' | 'api' | 'storm' | 'waiting';
  label: string;
  value: number;
  unit: string;
  /** What the value is compared with in the same run, when there is such a floor. */
  floor?: { label: string; value: number };
  ratio?: number;
  target?: string;
  /** undefined: no target (shown for reading). */
  pass?: boolean;
}

/**
 * The shortest limits of the controller in the bench's simulated cluster (a failure shows within seconds); a
 * large fleet gets longer ones (bench/fleet.ts), and the runs get the same as the controller.
 */
export const BENCH_LIMIT_MS = 3_000;

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Stopped extends Error {
  constructor() {
    super('stopped');
  }
}
