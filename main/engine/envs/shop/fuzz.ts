// thefuzz's token_set_ratio, which WebShop's reward uses to match attributes and options (a score
// above 85 counts), from its documented definition: both strings lower-cased with everything but
// letters and digits turned to spaces, split into token sets; t0 = the sorted common tokens,
// t1 = t0 + the sorted tokens only the first has, t2 = t0 + those only the second has; the score is
// the best `ratio` of (t0, t1), (t0, t2), (t1, t2), where ratio is the indel similarity
// 2·LCS / (|a| + |b|) · 100, rounded. A string with no tokens scores 0.

function tokens(s: string): string[] {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, ' ')
    .trim()
    .split(' ')
    .filter(Boolean);
}

/** Length of the longest common subsequence of two strings (characters). */
function lcs(a: string, b: string): number {
  let prev = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    const row = new Array<number>(b.length + 1).fill(0);
    for (let j = 1; j <= b.length; j++) row[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], row[j - 1]);
    prev = row;
  }
  return prev[b.length];
}

/** thefuzz's ratio: the indel similarity of two strings, 0-100, rounded. */
export function ratio(a: string, b: string): number {
  if (!a.length && !b.length) return 0;
  return Math.round((200 * lcs(a, b)) / (a.length + b.length));
}

export function tokenSetRatio(a: string, b: string): number {
  const ta = new Set(tokens(a));
  const tb = new Set(tokens(b));
  if (!ta.size || !tb.size) return 0;
  const common = [...ta].filter((t) => tb.has(t)).sort();
  const onlyA = [...ta].filter((t) => !tb.has(t)).sort();
  const onlyB = [...tb].filter((t) => !ta.has(t)).sort();
  const t0 = common.join(' ');
  const t1 = [...common, ...onlyA].join(' ');
  const t2 = [...common, ...onlyB].join(' ');
  return Math.max(ratio(t0, t1), ratio(t0, t2), ratio(t1, t2));
}
