/**
 * The receiver's defaults and bounds, in one place for src/config.ts, the server and the README.
 */

/** RECEIVER_PORT: the usual port of a webhook receiver in a pod (the dev server's UI is on 8233). */
export const DEFAULT_RECEIVER_PORT = 8080;
/** RECEIVER_HOST: every interface, so Alertmanager reaches it on the pod's IP. */
export const DEFAULT_RECEIVER_HOST = '0.0.0.0';

/**
 * RECEIVER_MAX_BODY_BYTES. An alert with its labels and annotations is 1-2 KB as Alertmanager sends it, so 1 MiB
 * holds several hundred alerts: more than one notification of a sensible route carries (the example route sets
 * `max_alerts`). At least 1 KiB (one alert), at most 64 MiB (the body is held in memory while it is checked).
 */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
export const MIN_MAX_BODY_BYTES = 1024;
export const MAX_MAX_BODY_BYTES = 64 * 1024 * 1024;

/** The webhook's path, as the Alertmanager example configures it. */
export const WEBHOOK_PATH = '/webhooks/alertmanager';
