// Text from files (a dataset's lines and headers, a model's config) reaches the terminal inside
// messages. Its control characters are shown escaped, so an escape sequence in a file cannot
// move the cursor, recolour or retitle the terminal, or forge a line with a carriage return.
// Tabs and newlines stay: messages use them.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNPRINTABLE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
