import { execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/**
 * v1.5.1 is the newest Temporal CLI release whose go.mod has no `replace` directive, which
 * `go install pkg@version` refuses.
 */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

export interface FindOptions {
  /** Build with `go install` when nothing is found and Go is present. */
  install?: boolean;
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** `go` on PATH, else the usual install location. */
export function findGo(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return onPath('go', env) ?? (executable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
}

/** Where `go install` puts binaries: GOBIN, else GOPATH/bin (asking go when it is there), else ~/go/bin. */
export function goBinDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GOBIN) return env.GOBIN;
  const go = findGo(env);
  if (go) {
    try {
      const gobin = execFileSync(go, ['env', 'GOBIN'], { encoding: 'utf8', env }).trim();
      if (gobin) return gobin;
      const gopath = execFileSync(go, ['env', 'GOPATH'], { encoding: 'utf8', env })
        .trim()
        .split(delimiter)[0];
      if (gopath) return join(gopath, 'bin');
    } catch {
      // fall through to the default below
    }
  }
  return join(env.GOPATH?.split(delimiter)[0] || join(homedir(), 'go'), 'bin');
}

/**
 * Finds the Temporal CLI in this order: $TEMPORAL_CLI, `temporal` on PATH, the Go bin directory, a build with
 * `go install` (when allowed and Go is present). Returns undefined when none of those gives one: the caller then
 * falls back to the SDK's own download. Never rebuilds what is already there.
 */
export async function findTemporalCli(opts: FindOptions = {}): Promise<string | undefined> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? (() => undefined);
  if (env.TEMPORAL_CLI) {
    if (!executable(env.TEMPORAL_CLI)) {
      throw new Error(`TEMPORAL_CLI is set to "${env.TEMPORAL_CLI}", which is not an executable file`);
    }
    return env.TEMPORAL_CLI;
  }
  const fromPath = onPath('temporal', env);
  if (fromPath) return fromPath;
  const inGoBin = join(goBinDir(env), 'temporal');
  if (existsSync(inGoBin) && executable(inGoBin)) return inGoBin;
  const go = findGo(env);
  if (!opts.install || !go) return undefined;

  log(`building the Temporal CLI: go install ${TEMPORAL_CLI_MODULE} (a few minutes, once per machine)`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(go, ['install', '-trimpath', '-ldflags=-s -w', TEMPORAL_CLI_MODULE], {
      env,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`go install exited with ${code}`)),
    );
  });
  if (!executable(inGoBin)) throw new Error(`go install finished but ${inGoBin} is not there`);
  return inGoBin;
}
