/** The floor workflow's activities: the runbook's two diagnosis reads with nothing inside (bench/floor-workflows.ts). */
export const floorActivities = {
  async checkVPSieNode(ref: {
    namespace: string;
    name: string;
  }): Promise<{ namespace: string; name: string }> {
    return ref;
  },
  async gatherEvidence(input: {
    ref: { namespace: string; name: string };
    lastSeen: unknown;
  }): Promise<null> {
    void input;
    return null;
  },
};

export type FloorActivities = typeof floorActivities;
