import { spawnSync } from 'node:child_process';
import { tuneWorkerHeap, WORKER_V8_FLAGS } from '../../src/worker-heap';

describe('tuneWorkerHeap', () => {
  it('uses flags this Node knows (an unknown one would be ignored silently at run time)', () => {
    const r = spawnSync(process.execPath, [...WORKER_V8_FLAGS, '-e', '0'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('leaves a flag the operator gave, in either spelling', () => {
    expect(tuneWorkerHeap(['--max-semi-space-size=8'])).toEqual(['--heap-growing-percent=50']);
    expect(tuneWorkerHeap(['--heap_growing_percent=20', '--max_semi_space_size=1', ''])).toEqual([]);
    expect(tuneWorkerHeap([])).toEqual([...WORKER_V8_FLAGS]);
  });
});
