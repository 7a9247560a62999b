import { rmSync } from 'node:fs';
import { runCleanups } from './cleanup';

export default async function globalTeardown(): Promise<void> {
  await runCleanups();
  if (process.env.VPSIE_TEST_WORKDIR)
    rmSync(process.env.VPSIE_TEST_WORKDIR, { recursive: true, force: true });
}
