/**
 * `node -r ./demo/register.js demo/main.ts`: runs the demo from its TypeScript sources without a build. The demo
 * uses the product (src/) and the simulators of the test harness (test/support/), which no build of the product
 * contains; each .ts file is compiled with swc when it is first required, exactly as Jest's transform
 * (@swc/jest) compiles them for the tests: same code, no type check (that is `npm run typecheck`'s job), a few
 * milliseconds per file. Inline source maps keep stack traces pointing at the .ts lines (--enable-source-maps).
 */
'use strict';
const { readFileSync } = require('node:fs');
const { transformSync } = require('@swc/core');

require.extensions['.ts'] = function compileTypeScript(module, filename) {
  const { code } = transformSync(readFileSync(filename, 'utf8'), {
    filename,
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  });
  module._compile(code, filename);
};
