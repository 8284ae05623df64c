import { describe, expect, it } from 'vitest';
import { streamableText } from '../../main/engine/commands/chat.ts';

describe('the text a stream may send before a reply is finished', () => {
  it('holds back what may become a stop string, and an incomplete character', () => {
    expect(streamableText('Hello wor', ['world'])).toBe('Hello ');
    expect(streamableText('Hello w', ['world', 'xyz'])).toBe('Hello ');
    expect(streamableText('Hello world and more', ['world'])).toBe('Hello ');
    expect(streamableText('abcab', ['abd', 'b'])).toBe('a');
    expect(streamableText('caf\uFFFD', [])).toBe('caf');
    expect(streamableText('plain', [])).toBe('plain');
    // A prefix of a stop string in the middle is no reason to wait.
    expect(streamableText('wo wo x', ['world'])).toBe('wo wo x');
  });
});
