/**
 * The CLI as a user runs it: the project's sources compiled to CommonJS in the layout `npm run build` gives
 * (`dist/cli/main.js`, package.json's `bin`, made executable as the build script does), once per Jest run for
 * every test file that asks, and run as a child process.
 *
 * The compiler is swc, as Jest's own transform, with tsconfig's target and module: the same JavaScript tsc emits
 * for this code (no const enums, no decorators), in well under a second where tsc takes about ten seconds of CPU
 * on a loaded machine; the type check is `npm run typecheck`'s job. The build goes to `<work dir>/cli-build/dist`
 * (the work dir global setup made, removed at teardown) beside a copy of package.json and a link to the project's
 * node_modules, so the built files find their dependencies and their version as they do in the project. The
 * first file to ask builds (under a lock directory); the others wait for its marker. Children run with a clean
 * environment: only what a test gives them.
 */
import { execFile } from 'node:child_process';
import {
  chmod,
  copyFile,
  mkdir,
  readdir,
  readFile,
  rename,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { transformFile } from '@swc/core';
import { temporalAddress } from './temporal';

const ROOT = join(__dirname, '..', '..');
const BUILD_TIMEOUT_MS = 120_000;

interface PackageJson {
  bin: Record<string, string>;
}

function workDir(): string {
  const dir = process.env.VPSIE_TEST_WORKDIR;
  if (!dir) throw new Error('VPSIE_TEST_WORKDIR is unset: run the tests through jest (global setup)');
  return dir;
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((x) => (x.isDirectory() ? sources(join(dir, x.name)) : Promise.resolve([join(dir, x.name)]))),
  );
  return nested.flat().filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
}

/** src/**\/*.ts → outDir/**\/*.js, as tsconfig.build.json lays them out (rootDir src). */
async function compile(outDir: string): Promise<void> {
  const src = join(ROOT, 'src');
  await Promise.all(
    (await sources(src)).map(async (file) => {
      const { code } = await transformFile(file, {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
        module: { type: 'commonjs' },
        sourceMaps: false,
      });
      const out = join(outDir, relative(src, file)).replace(/\.ts$/, '.js');
      await mkdir(dirname(out), { recursive: true });
      await writeFile(out, code);
    }),
  );
}

let built: Promise<string> | undefined;

/** The path of the `vpsie-runbook` bin (package.json `bin`) in the build, built on first call. */
export function builtCli(): Promise<string> {
  built ??= build();
  return built;
}

async function build(): Promise<string> {
  const root = join(workDir(), 'cli-build');
  const marker = join(workDir(), 'cli-build.done.json');
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
  const bin = join(root, pkg.bin['vpsie-runbook']);
  let mine = true;
  try {
    await mkdir(join(workDir(), 'cli-build.lock'));
  } catch {
    mine = false;
  }
  if (mine) {
    await mkdir(root, { recursive: true });
    await copyFile(join(ROOT, 'package.json'), join(root, 'package.json'));
    await symlink(join(ROOT, 'node_modules'), join(root, 'node_modules'), 'dir');
    let error = '';
    try {
      await compile(join(root, 'dist'));
      await chmod(bin, 0o755); // as `npm run build` does
    } catch (err) {
      error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    }
    // Written whole, then renamed: a waiting file never reads half a marker.
    await writeFile(`${marker}.tmp`, JSON.stringify({ ok: !error, output: error }));
    await rename(`${marker}.tmp`, marker);
    if (error) throw new Error(`building the CLI failed: ${error}`);
    return bin;
  }
  const deadline = Date.now() + BUILD_TIMEOUT_MS;
  while (!(await exists(marker))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for another test file to build the CLI`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const done = JSON.parse(await readFile(marker, 'utf8')) as { ok: boolean; output: string };
  if (!done.ok) throw new Error(`the CLI build failed in another test file:\n${done.output}`);
  return bin;
}

export interface CliRun {
  /** The exit code; null when killed. */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** The child's whole environment besides PATH and HOME (TEMPORAL_ADDRESS defaults to the test server). */
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Run the bin itself (its `#!/usr/bin/env node` line) instead of `node <bin>`. */
  direct?: boolean;
}

/** Runs `vpsie-runbook <args>` and answers its exit code and output. Asynchronous: the test's worker keeps working. */
export async function runCli(args: string[], opts: CliOptions = {}): Promise<CliRun> {
  const bin = await builtCli();
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    TEMPORAL_ADDRESS: temporalAddress(),
    ...opts.env,
  };
  const [file, argv] = opts.direct ? [bin, args] : [process.execPath, [bin, ...args]];
  return new Promise((resolve) => {
    execFile(
      file,
      argv,
      { env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : null
          : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** A failed expectation on a CLI run shows everything it printed. */
export function explain(r: CliRun): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** `vpsie-runbook` on a test file's own task queue (where its worker runs). */
export function cliOn(taskQueue: string): (...args: string[]) => Promise<CliRun> {
  return (...args) => runCli(args, { env: { TEMPORAL_TASK_QUEUE: taskQueue } });
}
