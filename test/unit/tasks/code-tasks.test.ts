// Code tasks from MBPP- and HumanEval-shaped JSON Lines: the model reads the description and the
// signature; the tests and reference solutions are the hidden answer and nowhere else.
import { describe, expect, it } from 'vitest';
import { CodeTaskError, codeTaskItem, codeTaskShape, readHiddenCodeAnswer } from '../../../main/engine/tasks/code-tasks.ts';
import { DatasetError, parseDataset, previewDataset } from '../../../main/engine/tasks/datasets.ts';

// Records as the datasets ship them (MBPP task 2; HumanEval/0 shortened).
const MBPP = {
  text: 'Write a function to find the similar elements from the given two tuple lists.',
  code: 'def similar_elements(test_tup1, test_tup2):\r\n  res = tuple(set(test_tup1) & set(test_tup2))\r\n  return (res) ',
  task_id: 2,
  test_setup_code: '',
  test_list: [
    'assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)',
    'assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)',
  ],
  challenge_test_list: [],
};

const HUMANEVAL = {
  task_id: 'HumanEval/0',
  prompt:
    'from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n    """ Check if in given list of numbers, are any two numbers closer to each other than\n    given threshold.\n    """\n',
  canonical_solution:
    '    for idx, elem in enumerate(numbers):\n        for idx2, elem2 in enumerate(numbers):\n            if idx != idx2:\n                distance = abs(elem - elem2)\n                if distance < threshold:\n                    return True\n\n    return False\n',
  test: "\n\nMETADATA = {\n    'author': 'jt',\n}\n\n\ndef check(candidate):\n    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True\n    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False\n",
  entry_point: 'has_close_elements',
};

const jsonl = (...records: object[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n';

describe('code tasks', () => {
  it('recognises the two shapes and nothing else', () => {
    expect(codeTaskShape(MBPP)).toBe('mbpp');
    expect(codeTaskShape(HUMANEVAL)).toBe('humaneval');
    expect(codeTaskShape({ prompt: 'What is 2+2?', answer: '4' })).toBeNull();
    expect(codeTaskShape({ prompt: 'p', test: 't' })).toBeNull();
  });

  it('imports MBPP: description and signature in the prompt, tests and code hidden', () => {
    const parsed = parseDataset(jsonl(MBPP, { ...MBPP, task_id: 3 }), 'mbpp.jsonl');
    expect(parsed.items).toHaveLength(2);
    const item = parsed.items[0];
    expect(item.prompt).toBe(
      'Write a function to find the similar elements from the given two tuple lists.\n\nWrite the Python function:\ndef similar_elements(test_tup1, test_tup2):\n\n' +
        'Answer with the function in a ```python code block, then a second code block of assert statements that test it.\n',
    );
    expect(item.metadata).toEqual({ format: 'mbpp', language: 'python', entry_point: 'similar_elements', signature: 'def similar_elements(test_tup1, test_tup2):', task_id: 2 });
    const everythingVisible = item.prompt + JSON.stringify(item.metadata);
    expect(everythingVisible).not.toContain('assert similar');
    expect(everythingVisible).not.toContain('set(test_tup1)');
    expect(readHiddenCodeAnswer(item.answer)).toEqual({
      kind: 'code',
      language: 'python',
      entryPoint: 'similar_elements',
      setup: '',
      tests: `${MBPP.test_list[0]}\n${MBPP.test_list[1]}`,
      reference: 'def similar_elements(test_tup1, test_tup2):\n  res = tuple(set(test_tup1) & set(test_tup2))\n  return (res) ',
    });
    expect(parsed.mappingNote).toMatch(/^MBPP-shaped code tasks/);
  });

  it('imports sanitized MBPP (prompt and test_imports), picking the function the tests call', () => {
    const record = {
      prompt: 'Write a function to square a number.',
      code: 'import math\ndef helper(x):\n    return x\ndef square(x):\n    return helper(x) * x',
      test_imports: ['import math'],
      test_list: ['assert square(3) == 9'],
    };
    const [item] = parseDataset(jsonl(record), 'sanitized.jsonl').items;
    expect(item.prompt).toContain('def square(x):');
    expect(item.prompt).not.toContain('helper');
    expect(readHiddenCodeAnswer(item.answer)).toMatchObject({ entryPoint: 'square', setup: 'import math' });
  });

  it('imports HumanEval: the prompt as given, check(entry_point) after the hidden test', () => {
    const preview = previewDataset(jsonl(HUMANEVAL), 'humaneval.jsonl');
    expect(preview.error).toBeNull();
    const [item] = preview.items;
    expect(item.prompt).toBe(HUMANEVAL.prompt);
    expect(item.metadata).toEqual({
      format: 'humaneval',
      language: 'python',
      entry_point: 'has_close_elements',
      signature: 'def has_close_elements(numbers: List[float], threshold: float) -> bool:',
      task_id: 'HumanEval/0',
    });
    const hidden = readHiddenCodeAnswer(item.answer)!;
    expect(hidden.tests).toBe(`${HUMANEVAL.test}\n\ncheck(has_close_elements)\n`);
    expect(hidden.reference).toBe(HUMANEVAL.prompt + HUMANEVAL.canonical_solution);
    expect(JSON.stringify(item.metadata)).not.toContain('candidate');
  });

  it('names the file and line of a record that does not fit the first one', () => {
    const broken = { ...MBPP, test_list: [] };
    expect(() => parseDataset(jsonl(MBPP, broken), 'mbpp.jsonl')).toThrow(DatasetError);
    expect(() => parseDataset(jsonl(MBPP, broken), 'mbpp.jsonl')).toThrow('mbpp.jsonl, line 2: "test_list" must be a non-empty list of assert statements (strings)');
    expect(() => parseDataset(jsonl(MBPP, { text: 'x' }), 'mbpp.jsonl')).toThrow('mbpp.jsonl, line 2: this file\'s first record is a MBPP task, so every record needs "text" (or "prompt"), "code" and "test_list" as text');
    expect(() => parseDataset(jsonl({ ...MBPP, test_list: ['assert other(1) == 1'] }), 'mbpp.jsonl')).toThrow(
      'mbpp.jsonl, line 1: no function of "code" (similar_elements) is called by "test_list"',
    );
    expect(() => codeTaskItem({ ...HUMANEVAL, entry_point: 'missing' }, 'humaneval')).toThrow(CodeTaskError);
  });

  it('keeps the ordinary import when a field mapping is given', () => {
    const parsed = parseDataset(jsonl(HUMANEVAL), 'humaneval.jsonl', { mapping: { prompt: 'prompt', answer: 'entry_point' } });
    expect(parsed.items[0].answer).toBe('has_close_elements');
    expect(readHiddenCodeAnswer(parsed.items[0].answer)).toBeNull();
  });

  it('reads back only a well-formed hidden code answer', () => {
    expect(readHiddenCodeAnswer(null)).toBeNull();
    expect(readHiddenCodeAnswer('42')).toBeNull();
    expect(readHiddenCodeAnswer('{"kind":"code"')).toBeNull();
    expect(readHiddenCodeAnswer('{"kind":"code","language":"ruby","tests":"","setup":"","entryPoint":"f"}')).toBeNull();
  });
});
