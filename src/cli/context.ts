/** What every command gets: where to print, and the global flags (output format, where Temporal is). */
import type { Config } from '../config';
import { parseCliDuration, type OutputFormat } from './args';
import { loadEnvConfig, temporalSettings, withTemporal, type TemporalSession } from './temporal';

/** stdout carries the result only; progress and hints go to stderr, so `--output json | jq` always parses. */
export interface Io {
  out(text: string): void;
  progress(text: string): void;
  env: NodeJS.ProcessEnv;
  now(): number;
}

export const processIo: Io = {
  out: (text) => {
    if (text !== '') process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  },
  progress: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
  now: () => Date.now(),
};

/** The global flags, as Commander hands them to every command (`optsWithGlobals()`). */
export interface GlobalFlags {
  output: OutputFormat;
  address?: string;
  namespace?: string;
  taskQueue?: string;
  connectTimeout: string;
}

export class CommandContext {
  private config?: Config;
  constructor(
    readonly io: Io,
    readonly flags: GlobalFlags,
  ) {}

  get json(): boolean {
    return this.flags.output === 'json';
  }

  /** The worker's configuration from the environment, read once; a bad variable is refused by name (exit 2). */
  env(): Config {
    this.config ??= loadEnvConfig(this.io.env);
    return this.config;
  }

  temporal<T>(fn: (t: TemporalSession) => Promise<T>): Promise<T> {
    const settings = temporalSettings(
      {
        ...(this.flags.address !== undefined ? { address: this.flags.address } : {}),
        ...(this.flags.namespace !== undefined ? { namespace: this.flags.namespace } : {}),
        ...(this.flags.taskQueue !== undefined ? { taskQueue: this.flags.taskQueue } : {}),
        connectTimeoutMs: parseCliDuration(this.flags.connectTimeout, '--connect-timeout', 1_000, 300_000),
      },
      this.env(),
    );
    return withTemporal(settings, fn);
  }

  /** Prints the result: JSON as is for scripts, else the text for people. */
  result(json: unknown, text: () => string): void {
    this.io.out(this.json ? JSON.stringify(json, null, 2) : text());
  }
}
