/** A process's resident memory, sampled from /proc/<pid>/status (Linux), in MB. */
import { readFileSync } from 'node:fs';

export interface MemorySample {
  at: number;
  rssMB: number;
}

function field(text: string, name: string): number {
  const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** VmRSS and VmHWM (the process's peak resident size so far), MB; NaN when unreadable. */
export function readMemory(pid: number): { rssMB: number; hwmMB: number } {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rssMB: field(text, 'VmRSS'), hwmMB: field(text, 'VmHWM') };
  } catch {
    return { rssMB: NaN, hwmMB: NaN };
  }
}

export class MemorySampler {
  readonly samples: MemorySample[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    private readonly everyMs = 500,
  ) {}

  start(): void {
    const take = () => {
      const { rssMB } = readMemory(this.pid);
      if (Number.isFinite(rssMB)) this.samples.push({ at: Date.now(), rssMB });
    };
    take();
    this.timer = setInterval(take, this.everyMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  between(from: number, to = Infinity): number[] {
    return this.samples.filter((s) => s.at >= from && s.at <= to).map((s) => s.rssMB);
  }
}
