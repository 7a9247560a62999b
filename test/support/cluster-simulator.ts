/** The cluster simulator lives in ./cluster (one file per actor); this path stays for existing imports. */
export * from './cluster';
