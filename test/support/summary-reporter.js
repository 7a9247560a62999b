// Writes the counts CI prints as its last line ("N passed, N failed"). A suite that failed to run at all
// (a syntax error, a failing beforeAll) counts as failed even though none of its tests did.
const { mkdirSync, writeFileSync } = require('node:fs');
const { dirname } = require('node:path');

class SummaryReporter {
  constructor(_globalConfig, options) {
    this.outputFile = (options && options.outputFile) || 'test-results/summary.json';
  }

  onRunComplete(_contexts, results) {
    const brokenSuites = results.testResults.filter(
      (s) => s.testExecError || (s.failureMessage && s.numFailingTests === 0),
    ).length;
    const summary = {
      passed: results.numPassedTests,
      failed: results.numFailedTests + brokenSuites,
      skipped: results.numPendingTests + results.numTodoTests,
      suites: results.numTotalTestSuites,
    };
    mkdirSync(dirname(this.outputFile), { recursive: true });
    writeFileSync(this.outputFile, JSON.stringify(summary));
  }
}

module.exports = SummaryReporter;
