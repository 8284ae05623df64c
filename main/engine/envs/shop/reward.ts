// WebShop's partial-credit reward for a purchase, as `get_reward` in
// princeton-nlp/WebShop web_agent_site/engine/goal.py (commit 6ba9969) computes it, rewritten here:
//
//   reward = r_type · (attribute matches + option matches + r_price) / (|goal attributes| + |goal options| + 1)
//
// - attributes: a goal attribute matches when some attribute of the product scores above 85 with
//   token_set_ratio, else when it is a substring of the product's title, bullet points or
//   description (lower case);
// - options: each option the agent clicked matches when it equals a goal option (for "size", after
//   colour normalisation) or scores above 85 with one (other options), else when it is a substring
//   of the title, bullet points or description; colours are normalised first (`normalizeColor`);
// - r_price: 1 when the price is at most the goal's limit;
// - r_type: 1, or 0.5 when neither the search query, at least two category levels, nor more than
//   0.2 of the goal product's title nouns match; 0.1 below 0.1 of the nouns, 0 with none (0.2 is
//   the noun score when the goal has no nouns).
// What differs: the title nouns are the catalogue's `nouns` (brand and product words) instead of
// spaCy's noun tags, and token_set_ratio is `fuzz.ts`.
import type { Product } from './catalog.ts';
import { tokenSetRatio } from './fuzz.ts';

export interface ShopGoal {
  asin: string;
  query: string;
  category: string;
  /** The goal product's title nouns. */
  nouns: string[];
  attributes: string[];
  /** Option name → the value asked for. */
  options: Record<string, string>;
  priceUpper: number;
  text: string;
}

export interface RewardParts {
  reward: number;
  rType: number;
  queryMatch: boolean;
  categoryMatch: boolean;
  titleScore: number;
  attributeMatches: number;
  optionMatches: number;
  rPrice: number;
}

/**
 * The base colour words a colour is reduced to, alphabetical: WebShop's `normalize_color` returns
 * the first word of its COLOR_SET found in the text ("navy blue" → "blue"), else the text. This is
 * the same rule over the colours this catalogue uses.
 */
export const BASE_COLORS = ['beige', 'black', 'blue', 'burgundy', 'charcoal', 'clear', 'green', 'grey', 'mustard', 'navy', 'olive', 'pink', 'purple', 'red', 'white', 'yellow'];

export function normalizeColor(value: string): string {
  return BASE_COLORS.find((c) => value.includes(c)) ?? value;
}

const EXACT_MATCH_OPTIONS = ['size'];
const FUZZY_MATCH = 85;

function inText(product: Product, value: string): boolean {
  return (
    product.title.toLowerCase().includes(value) ||
    product.bulletPoints.join(' ').toLowerCase().includes(value) ||
    product.description.toLowerCase().includes(value)
  );
}

export function typeReward(product: Product, goal: ShopGoal): Pick<RewardParts, 'rType' | 'queryMatch' | 'categoryMatch' | 'titleScore'> {
  const queryMatch = product.query === goal.query;
  const levels = (c: string) => new Set(c.split('›').map((x) => x.trim()));
  const goalLevels = levels(goal.category);
  const categoryMatch = [...levels(product.category)].filter((x) => goalLevels.has(x)).length >= 2;
  const desired = new Set(goal.nouns);
  const shared = new Set(product.nouns.filter((n) => desired.has(n))).size;
  const titleScore = desired.size === 0 ? 0.2 : shared / desired.size;
  let rType = queryMatch || categoryMatch || titleScore > 0.2 ? 1 : 0.5;
  if (titleScore < 0.1) rType = 0.1;
  if (titleScore === 0) rType = 0;
  return { rType, queryMatch, categoryMatch, titleScore };
}

export function attributeMatches(product: Product, goal: ShopGoal): number {
  let n = 0;
  for (const g of goal.attributes) {
    if (product.attributes.some((p) => tokenSetRatio(p, g) > FUZZY_MATCH) || inText(product, g)) n++;
  }
  return n;
}

export function optionMatches(product: Product, goalOptions: string[], chosen: Record<string, string>): number {
  const goals = goalOptions.map(normalizeColor);
  let n = 0;
  for (const [key, raw] of Object.entries(chosen)) {
    const value = normalizeColor(raw);
    const matched = EXACT_MATCH_OPTIONS.includes(key.toLowerCase()) ? goals.includes(value) : goals.some((g) => tokenSetRatio(g, value) > FUZZY_MATCH);
    if (matched || inText(product, value)) n++;
  }
  return n;
}

/** The reward for buying `product` at `price` with the options the agent clicked. */
export function shopReward(product: Product, goal: ShopGoal, price: number, chosen: Record<string, string>): RewardParts {
  const type = typeReward(product, goal);
  const rPrice = price <= goal.priceUpper ? 1 : 0;
  const attrs = attributeMatches(product, goal);
  const goalOptions = Object.values(goal.options);
  const opts = optionMatches(product, goalOptions, chosen);
  const total = (attrs + opts + rPrice) / (goal.attributes.length + goalOptions.length + 1);
  return { reward: total * type.rType, ...type, attributeMatches: attrs, optionMatches: opts, rPrice };
}
