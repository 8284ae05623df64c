// The smallest agent run the tests record: one household task, two episodes of two turns on
// tiny-chars, its analyzer an OpenAI-compatible endpoint at `url` serving `name`.
export function tinyAgentRunSettings(url: string, name: string): Record<string, unknown> {
  return {
    model: 'tiny-chars',
    dataset: 'household',
    method: 'agent',
    steps: 1,
    promptsPerStep: 1,
    votes: 2,
    maxNewTokens: 12,
    agentMaxSteps: 2,
    agentHistory: 1,
    agentPromptStyle: 'compact',
    agentMiniBatch: 4,
    valEvery: 0,
    opidAnalyzer: 'endpoint',
    opidAnalyzerUrl: url,
    opidAnalyzerName: name,
  };
}
