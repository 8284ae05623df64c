// A model folder's JSON that does not parse is placed by line and column, and never quoted:
// V8's own message shows the text around the fault ("Unexpected token 'r', "root:x:0:0"..."),
// which would hand a file's contents to whoever reads the error (issue 21.4).
import { describe, expect, it } from 'vitest';
import { parseJsonText } from '../../../main/engine/nn/json-text.ts';

const fault = (text: string): string => {
  try {
    parseJsonText(text, 'config.json');
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('it parsed');
};

describe('parseJsonText', () => {
  it('parses JSON', () => {
    expect(parseJsonText('{"a": [1, true, null]}', 'x')).toEqual({ a: [1, true, null] });
  });

  it('places every kind of fault by line and column without quoting the text', () => {
    const cases: [string, string][] = [
      // V8 names no position for these: found by bisection.
      ['root:x:0:0:root:/root:/bin/bash\n', 'line 1, column 1'],
      ['{\n  "model_type": "llama",\n  "hidden_size": hunter2\n}', 'line 3, column 18'],
      ['[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, secret, 14, 15, 16]', 'line 1, column 45'],
      ['{\n "a": [1, 2, tru ]}', 'line 2, column 17'],
      // V8 names the offset for these.
      ['{\n  "a": 1,\n  secret: 2}', 'line 3, column 3'],
      ['{"a": 1}\n  secret', 'line 2, column 3'],
      ['{"a": 1,\n"b": -x}', 'line 2, column 7'],
      // Early ends (where V8 names the end as the position, too) and empty files.
      ['{"a": [1, 2', 'it ends before the JSON value does'],
      ['{"a": "unterminated secret', 'it ends before the JSON value does'],
      ['  \n', 'the file is empty'],
    ];
    for (const [text, where] of cases) {
      const message = fault(text);
      expect(message, text).toBe(`config.json is not valid JSON (${where})`);
    }
  });
});
