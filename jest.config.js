/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j|mj)sx?$': ['@swc/jest'] },
  // @kubernetes/client-node and a few of its dependencies ship only ES modules; Jest runs CommonJS.
  transformIgnorePatterns: [
    '/node_modules/(?!(@kubernetes/client-node|openid-client|oauth4webapi|jose|jsonpath-plus|jsep|@jsep-plugin|rfc4648)/)',
  ],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  // After each file that used Temporal: no registered secret in the histories of the runs started meanwhile.
  setupFilesAfterEnv: ['<rootDir>/test/support/history-scan-hook.ts'],
  testTimeout: 60_000,
  // Two cores: one test worker per core keeps the servers responsive.
  maxWorkers: 2,
  reporters: [
    'default',
    ['<rootDir>/test/support/summary-reporter.js', { outputFile: 'test-results/summary.json' }],
  ],
};
