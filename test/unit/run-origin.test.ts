import { RUNBOOK_LINKS, runDetails, runSummary } from '../../src/temporal/start-runbook';

const ref = { namespace: 'kube-system', name: 'ng-a-7x2k' };

describe('runSummary', () => {
  it('names the VPSieNode, its NodeGroup and the alert, as the UI lists runs', () => {
    expect(
      runSummary(ref, {
        source: 'alertmanager',
        alertName: 'VPSieNodeProvisioningFailed',
        nodeGroup: 'ng-a',
      }),
    ).toBe('VPSieNode kube-system/ng-a-7x2k, NodeGroup ng-a, alert VPSieNodeProvisioningFailed');
  });

  it('says who started it when no alert did, and that the NodeGroup is not known yet', () => {
    expect(runSummary(ref, { source: 'cli' })).toBe(
      'VPSieNode kube-system/ng-a-7x2k, NodeGroup unknown, started by cli',
    );
  });
});

describe('runDetails', () => {
  it("lists the alert's labels and annotations, sorted, and links its runbook_url", () => {
    const text = runDetails({
      source: 'alertmanager',
      alertName: 'VPSieNodeProvisioningTimeout',
      startsAt: '2026-11-26T01:00:00Z',
      labels: { vpsienode: 'ng-a-7x2k', alertname: 'VPSieNodeProvisioningTimeout' },
      annotations: { runbook_url: 'https://runbooks.example/pf', summary: 'stuck\n  in Provisioning' },
    });
    expect(text.split('\n')).toEqual([
      'Started by alertmanager for alert VPSieNodeProvisioningTimeout, firing since 2026-11-26T01:00:00Z.',
      '',
      '**Labels**',
      '',
      '- `alertname`: VPSieNodeProvisioningTimeout',
      '- `vpsienode`: ng-a-7x2k',
      '',
      '**Annotations**',
      '',
      '- `runbook_url`: https://runbooks.example/pf',
      '- `summary`: stuck in Provisioning',
      '',
      'Runbook: https://runbooks.example/pf',
    ]);
  });

  it('links the runbook itself when the alert gives no runbook_url', () => {
    expect(runDetails({ source: 'cli' })).toBe(`Started by cli.\n\nRunbook: ${RUNBOOK_LINKS.runbook}`);
  });
});
