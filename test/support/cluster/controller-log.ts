/**
 * The controller's log as its production logger writes it (`internal/logging.NewLogger(false)`: zap's
 * production JSON encoder with ISO 8601 times, caller, and a stack trace on errors; `--log-level=info`, so Debug
 * lines never appear). Each reconcile logs through a child logger carrying `namespace`, `name` and a fresh
 * `requestID`, as upstream's Reconcile does. Lines reach the fake kubelet that serves `pods/log`.
 */
import { randomUUID } from 'node:crypto';

export type Level = 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

const MODULE = 'github.com/vpsie/vpsie-k8s-autoscaler';

export class ControllerLog {
  private readonly linesValue: string[] = [];
  private sink?: (line: string) => void;

  get lines(): readonly string[] {
    return this.linesValue;
  }

  /** Sends every line so far, then each new one, to `sink` (the fake kubelet). */
  attach(sink: (line: string) => void): void {
    this.sink = sink;
    for (const line of this.linesValue) sink(line);
  }

  detach(): void {
    this.sink = undefined;
  }

  /** A raw line (e.g. noise around the lines a test looks for). */
  append(line: string): void {
    this.linesValue.push(line);
    this.sink?.(line);
  }

  write(level: Level, logger: string | undefined, caller: string, msg: string, fields: Fields): void {
    const entry: Fields = {
      level,
      ts: new Date().toISOString(),
      ...(logger ? { logger } : {}),
      caller,
      msg,
      ...fields,
    };
    if (level === 'error') entry.stacktrace = stacktrace(caller);
    this.append(JSON.stringify(entry));
  }

  /** A named logger with fields bound, as `logger.Named(name).With(...)`. */
  logger(name: string | undefined, fields: Fields = {}): Logger {
    return new Logger(this, name, fields);
  }
}

export class Logger {
  constructor(
    private readonly log: ControllerLog,
    private readonly name: string | undefined,
    private readonly fields: Fields,
  ) {}

  /** The logger of one reconcile: `namespace`, `name`, and a new `requestID` (upstream's WithRequestID). */
  forRequest(namespace: string, name: string): Logger {
    return this.with({ namespace, name, requestID: randomUUID() });
  }

  with(fields: Fields): Logger {
    return new Logger(this.log, this.name, { ...this.fields, ...fields });
  }

  named(name: string): Logger {
    return new Logger(this.log, name, this.fields);
  }

  info(caller: string, msg: string, fields: Fields = {}): void {
    this.log.write('info', this.name, caller, msg, { ...this.fields, ...fields });
  }

  warn(caller: string, msg: string, fields: Fields = {}): void {
    this.log.write('warn', this.name, caller, msg, { ...this.fields, ...fields });
  }

  error(caller: string, msg: string, fields: Fields = {}): void {
    this.log.write('error', this.name, caller, msg, { ...this.fields, ...fields });
  }
}

function stacktrace(caller: string): string {
  const [file] = caller.split(':');
  const pkg = file.includes('/') ? file.slice(0, file.lastIndexOf('/')) : '';
  return [
    pkg ? `${MODULE}/pkg/controller/${pkg}.(*Reconciler).Reconcile` : `${MODULE}/cmd/controller.main`,
    `\t/workspace/pkg/controller/${caller}`,
    'sigs.k8s.io/controller-runtime/pkg/internal/controller.(*Controller).reconcileHandler',
    '\t/go/pkg/mod/sigs.k8s.io/controller-runtime@v0.19.0/pkg/internal/controller/controller.go:316',
  ].join('\n');
}
