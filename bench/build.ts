/**
 * The product as `npm run build` lays it out (`dist/main.js`, `dist/cli/main.js`), compiled from src/ with swc
 * into the bench's directory: the worker whose memory is measured is then `node dist/main.js`, the product's own
 * entry point (with the workflow bundle `npm run build` writes beside it, as deployed), with no compiler loaded
 * into it, and the build never depends on the type check of work in progress (`npm run typecheck` is for that).
 * Same approach as test/support/cli.ts: a copy of package.json beside it and a link to the project's node_modules.
 */
import { copyFile, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { transformFile } from '@swc/core';
import { writeWorkflowBundle } from '../src/bundle-workflows';
import { REPO_ROOT } from './paths';

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((x) => (x.isDirectory() ? sources(join(dir, x.name)) : Promise.resolve([join(dir, x.name)]))),
  );
  return nested.flat().filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
}

/** Builds into `<root>/dist`; answers the root (its `dist/main.js` is `npm start`'s worker). */
export async function buildProduct(root: string): Promise<string> {
  const src = join(REPO_ROOT, 'src');
  await mkdir(root, { recursive: true });
  await copyFile(join(REPO_ROOT, 'package.json'), join(root, 'package.json'));
  await symlink(join(REPO_ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
  await Promise.all(
    (await sources(src)).map(async (file) => {
      const { code } = await transformFile(file, {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
        sourceMaps: false,
      });
      const out = join(root, 'dist', relative(src, file)).replace(/\.ts$/, '.js');
      await mkdir(dirname(out), { recursive: true });
      await writeFile(out, code);
    }),
  );
  await writeWorkflowBundle(join(root, 'dist'), join(root, 'dist', 'workflows', 'index.js'));
  return root;
}
