// The built-in code tasks: deterministic, prefix-stable, split by description; their hidden
// reference solutions pass their hidden tests in the sandbox (both languages), and a wrong
// solution does not. Imported MBPP and HumanEval references pass theirs too.
import { afterAll, describe, expect, it } from 'vitest';
import { passesHidden } from '../../../main/engine/code/execute.ts';
import { CODE_FAMILIES, CODE_HIDDEN_TESTS, codeSplitOf, codeTaskItems, generateCodeTasks } from '../../../main/engine/tasks/code-generators.ts';
import { readHiddenCodeAnswer } from '../../../main/engine/tasks/code-tasks.ts';
import { parseDataset } from '../../../main/engine/tasks/datasets.ts';
import { SandboxPool } from '../../../main/sandbox/pool.ts';

describe('generateCodeTasks', () => {
  it('is deterministic, and a shorter list is a prefix of a longer one', () => {
    const a = generateCodeTasks({ count: 30, seed: 3 });
    expect(generateCodeTasks({ count: 30, seed: 3 })).toEqual(a);
    expect(generateCodeTasks({ count: 10, seed: 3 })).toEqual(a.slice(0, 10));
    expect(generateCodeTasks({ count: 30, seed: 4 })).not.toEqual(a);
    expect(new Set(a.map((t) => t.description)).size).toBe(30);
  });

  it('keeps the splits apart by description, whatever the seed', () => {
    const train = generateCodeTasks({ count: 60, seed: 1, split: 'train' });
    const evalTasks = generateCodeTasks({ count: 20, seed: 2, split: 'eval' });
    expect(train.every((t) => codeSplitOf(t.description) === 'train')).toBe(true);
    expect(evalTasks.every((t) => codeSplitOf(t.description) === 'eval')).toBe(true);
    const trainSet = new Set(train.map((t) => t.description));
    expect(evalTasks.some((t) => trainSet.has(t.description))).toBe(false);
  });

  it('shows the description and signature, and hides the tests and reference in the answer', () => {
    const [item] = codeTaskItems({ count: 1, seed: 0, language: 'javascript' });
    const hidden = readHiddenCodeAnswer(item.answer)!;
    expect(hidden.language).toBe('javascript');
    expect(hidden.tests.split('\n')).toHaveLength(CODE_HIDDEN_TESTS);
    expect(item.prompt).toContain(`Write the JavaScript function:\nfunction ${hidden.entryPoint}(`);
    expect(item.prompt + JSON.stringify(item.metadata)).not.toContain(`assert(${hidden.entryPoint}`);
    expect(item.prompt + JSON.stringify(item.metadata)).not.toContain('return');
  });

  it('refuses more tasks than the families have', () => {
    expect(() => generateCodeTasks({ count: 400, split: 'eval' })).toThrow('the code families have only about');
  });
});

describe('hidden references in the sandbox', () => {
  const pool = new SandboxPool({ size: 1, timeoutMs: 5_000 });
  afterAll(() => pool.close());

  // One task of every family (a seed's first tasks may repeat a family: take enough).
  function oneOfEach(language: 'python' | 'javascript') {
    const tasks = generateCodeTasks({ count: 80, seed: 0, language });
    return CODE_FAMILIES.map((f) => tasks.find((t) => t.family === f.id)!);
  }

  it.each(['python', 'javascript'] as const)("%s: every family's reference passes its hidden tests, a wrong one fails", async (language) => {
    for (const task of oneOfEach(language)) {
      expect(await passesHidden(pool, task.hidden.reference!, task.hidden), `${task.family}: ${task.hidden.reference}\n${task.hidden.tests}`).toBe('pass');
    }
    const task = oneOfEach(language)[0];
    const wrong = language === 'python' ? `def ${task.hidden.entryPoint}(x):\n    return 0\n` : `function ${task.hidden.entryPoint}(x) { return 0; }\n`;
    expect(await passesHidden(pool, wrong, task.hidden)).toBe('fail');
  });

  it('runs imported MBPP and HumanEval references against their hidden tests', async () => {
    const file = [
      {
        text: 'Write a function to find the similar elements from the given two tuple lists.',
        code: 'def similar_elements(test_tup1, test_tup2):\r\n  res = tuple(set(test_tup1) & set(test_tup2))\r\n  return (res) ',
        test_setup_code: 'import math',
        test_list: ['assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)'],
      },
      {
        prompt: 'def add(a: int, b: int) -> int:\n    """Add two numbers."""\n',
        canonical_solution: '    return a + b\n',
        test: 'def check(candidate):\n    assert candidate(2, 3) == 5\n',
        entry_point: 'add',
      },
    ];
    for (const record of file) {
      const hidden = readHiddenCodeAnswer(parseDataset(`${JSON.stringify(record)}\n`, 'tasks.jsonl').items[0].answer)!;
      expect(await passesHidden(pool, hidden.reference!, hidden)).toBe('pass');
    }
  });
});
