import { resolve } from 'node:path';

/** The project's root (bench/ is one level down). */
export const REPO_ROOT = resolve(__dirname, '..');
