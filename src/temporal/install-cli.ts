/** `npm run setup` step: makes sure a Temporal CLI is there (building it with Go if needed) and says where. */
import { findTemporalCli } from './cli-binary';

findTemporalCli({ install: true, log: (line) => console.log(line) }).then(
  (path) => {
    console.log(
      path ? `Temporal CLI: ${path}` : 'no Temporal CLI and no Go: the SDK will download its dev server',
    );
  },
  (err: unknown) => {
    console.error(`Temporal CLI: ${(err as Error).message}`);
    process.exit(1);
  },
);
