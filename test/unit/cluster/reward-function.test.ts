// The reward function `cluster export` writes (reward_fn.py) re-states the app's answer
// extraction and majority vote in Python, for verl to call on the cluster. It is run here, in
// Pyodide (CPython compiled to WebAssembly, already the sandbox's interpreter), on responses in
// every extraction form, and checked against the app's own extractAnswer and majorityVote: the
// cluster must label a prompt as the app would, and a reviewed label must win over the vote.
import { createRequire } from 'node:module';
import path from 'node:path';
import { loadPyodide, type PyodideAPI } from 'pyodide';
import { beforeAll, describe, expect, it } from 'vitest';
import { rewardFunctionSource } from '../../../main/cluster/reward-function.ts';
import { type AnswerFormat, extractAnswer } from '../../../main/engine/tasks/extract.ts';
import { majorityVote } from '../../../main/engine/tasks/vote.ts';

let py: PyodideAPI;
beforeAll(async () => {
  // Under vitest's transform Pyodide cannot find its own files: name its folder.
  py = await loadPyodide({ indexURL: path.dirname(createRequire(import.meta.url).resolve('pyodide/package.json')) + path.sep });
}, 120_000);

interface Scored { score: number; pred: string; pseudo_label: string; label_source: string; votes: string; majority_ratio: number; truth_correct: number; index: number }

/** Writes reward_fn.py for `format` with `labels` reviewed, and calls its compute_score on one batch. */
function computeScore(format: AnswerFormat, ties: 'first' | 'no-label', labels: Record<string, string>, batch: { text: string; index: number; split?: string; truth?: string }[]): Scored[] {
  const dir = `/rf-${format}-${ties}-${Object.keys(labels).length}`;
  py.FS.mkdirTree(dir);
  py.FS.writeFile(`${dir}/reward_fn.py`, rewardFunctionSource({ answerFormat: format, voteTies: ties, labelsFile: 'reviewed-labels.json' }));
  py.FS.writeFile(`${dir}/reviewed-labels.json`, JSON.stringify({ labels }));
  py.globals.set('batch_json', JSON.stringify(batch));
  py.globals.set('module_path', `${dir}/reward_fn.py`);
  const out = py.runPython(`
import importlib.util, json
spec = importlib.util.spec_from_file_location("reward_fn_" + str(abs(hash(module_path))), module_path)
rf = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rf)
b = json.loads(batch_json)
json.dumps(rf.compute_score(
    ["autodidact/test"] * len(b),
    [x["text"] for x in b],
    [x.get("truth") for x in b],
    [{"split": x.get("split", "train"), "index": x["index"]} for x in b],
))`) as string;
  return JSON.parse(out) as Scored[];
}

const MATH_RESPONSES = [
  'The answer is 42.',
  'So the result is \\boxed{\\frac{1}{2}}.',
  'Adding up: #### 1,234',
  'x comes to 3.50 in the end',
  'Final answer: **17**',
  'We get -5 and then 7',
  'First \\boxed{12}, no wait, \\boxed{13}',
  'no number here',
  '0.5',
  '$\\frac{3}{4}$ is the answer',
  'The answer is 3.0',
  'It is 3',
  'answer = -12.',
  'so #### 8\nand later 9',
  '\\boxed{2} and the answer is 5',
  '',
];

describe("cluster export's reward_fn.py, run in Pyodide", () => {
  it('extracts what the app extracts, in every format', () => {
    const cases: [AnswerFormat, string[]][] = [
      ['auto', MATH_RESPONSES],
      ['gsm8k', MATH_RESPONSES],
      ['multiple-choice', ['The answer is (B).', '\\boxed{C}', 'I pick (D) over (A)', 'Answer: a.', 'so it must be E', 'none of them', '\\boxed{\\text{B}}', 'The answer is option C']],
    ];
    for (const [format, texts] of cases) {
      const scored = computeScore(format, 'first', {}, texts.map((text, i) => ({ text, index: i })));
      expect(scored.map((s) => s.pred), format).toEqual(texts.map((t) => extractAnswer(t, format) ?? ''));
    }
  }, 60_000);

  it("labels each prompt's group as the app's majority vote does, ties included", () => {
    const groups: string[][] = [
      ['The answer is 0.5', '\\boxed{\\frac{1}{2}}', '1/2', 'The answer is 3', '#### 0.50'],
      ['It is 7', 'It is 8', 'nothing', 'It is 8', 'It is 7'],
      ['\\boxed{1,000}', 'The answer is 1000', '#### 999', 'so 1000.0'],
      ['no answer', 'none at all'],
      ['The answer is -3', 'The answer is 3', 'The answer is -3.0'],
    ];
    for (const ties of ['first', 'no-label'] as const) {
      const batch = groups.flatMap((g, index) => g.map((text) => ({ text, index })));
      const scored = computeScore('auto', ties, {}, batch);
      groups.forEach((g, index) => {
        const app = majorityVote(g.map((t) => extractAnswer(t, 'auto')), { format: 'auto', ties });
        const mine = scored.filter((s) => s.index === index);
        const where = `group ${index} (ties ${ties})`;
        expect(mine[0].pseudo_label, where).toBe(app.label ?? '');
        expect(mine[0].majority_ratio, where).toBeCloseTo(app.majorityRatio, 12);
        // A response is rewarded exactly when it is in the label's cluster.
        expect(mine.map((s) => s.score), where).toEqual(app.clusterOf.map((c) => (app.labelCluster >= 0 && c === app.labelCluster ? 1 : 0)));
        expect(JSON.parse(mine[0].votes), where).toEqual(Object.fromEntries(app.clusters.map((c) => [c.representative, c.count])));
      });
    }
  }, 60_000);

  it('a reviewed label wins over the vote for training prompts only; validation scores against the hidden answer', () => {
    const batch = [
      { text: 'It is 5', index: 0 },
      { text: 'It is 5', index: 0 },
      { text: 'It is 6', index: 0 },
      { text: 'It is 9', index: 1 },
      { text: 'It is 9', index: 4, split: 'test', truth: '9' },
      { text: 'It is 2', index: 4, split: 'test', truth: '9' },
    ];
    const scored = computeScore('auto', 'first', { 0: '6', 4: '2' }, batch);
    expect(scored.map((s) => [s.pseudo_label, s.label_source, s.score])).toEqual([
      ['6', 'review', 0],
      ['6', 'review', 0],
      ['6', 'review', 1],
      ['9', 'vote', 1],
      // The review of a validation prompt is ignored: validation measures against the truth.
      ['9', 'vote', 1],
      ['9', 'vote', 0],
    ]);
    expect(scored.map((s) => s.truth_correct)).toEqual([-1, -1, -1, -1, 1, 0]);
  }, 60_000);
});
