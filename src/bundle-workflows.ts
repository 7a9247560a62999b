/**
 * The runbook's workflow code, bundled once by `npm run build` (`dist/workflow-bundle.js`) rather than by every
 * worker as it starts: bundling (webpack) takes seconds of CPU at each start and leaves some of its memory in the
 * worker's resident set (an idle worker measured 203 MB bundling at start, 189–192 MB with the bundle built).
 * `node dist/bundle-workflows.js` writes the file; `npm run build` runs it after compiling, so the bundle is
 * always of the code beside it.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

export const WORKFLOW_BUNDLE_FILE = 'workflow-bundle.js';

/** The runbook's workflows: src/workflows, or dist/workflows once built. */
export const WORKFLOWS_PATH = require.resolve('./workflows');

/**
 * How the workflows are bundled, wherever they are (`workflowsPath`: the workflows' index module). A worker that
 * reuses one V8 context for every run (the SDK's default) loads a module again for each run it holds or replays,
 * except the modules preloaded: the runbook's decisions (src/runbook, beside src/workflows) hold no state, read
 * no clock and call no workflow API, so one copy serves every run; that is less memory per run and less work
 * per replay.
 */
export function workflowBundlerOptions(workflowsPath: string = WORKFLOWS_PATH): {
  workflowsPath: string;
  preloadModules: string[];
} {
  const runbook = join(dirname(workflowsPath), '..', 'runbook');
  // the index and the two modules the workflows import that it does not re-export
  return { workflowsPath, preloadModules: [runbook, join(runbook, 'lease'), join(runbook, 'orphans')] };
}

/** The bundle beside the compiled worker, when `npm run build` made one; null when running from src/. */
export function prebuiltWorkflowBundle(dir: string = __dirname): { codePath: string } | null {
  const codePath = join(dir, WORKFLOW_BUNDLE_FILE);
  return existsSync(codePath) ? { codePath } : null;
}

/** Bundles the workflows at `workflowsPath` into `<dir>/workflow-bundle.js`; answers the file. */
export async function writeWorkflowBundle(
  dir: string = __dirname,
  workflowsPath: string = WORKFLOWS_PATH,
): Promise<string> {
  const { code } = await bundleWorkflowCode({
    ...workflowBundlerOptions(workflowsPath),
    // webpack's progress lines are noise in a build; its warnings and errors still fail or show
    logger: {
      log: () => undefined,
      trace: () => undefined,
      debug: () => undefined,
      info: () => undefined,
      warn: console.warn,
      error: console.error,
    },
  });
  const file = join(dir, WORKFLOW_BUNDLE_FILE);
  await writeFile(file, code);
  return file;
}

if (require.main === module) {
  writeWorkflowBundle().then(
    (file) => console.log(`workflow bundle: ${file}`),
    (err: unknown) => {
      console.error(`could not bundle the workflows: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
