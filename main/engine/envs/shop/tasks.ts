// Shop tasks: a goal drawn from one catalogue product, worded as WebShop's synthetic instructions
// ("i need a pullover hoodie that is fleece lined and machine wash, with color: black, and size:
// large, and price lower than 50.00 dollars"). Deterministic for (difficulty, seed).
//   easy:   one attribute, no option
//   medium: two attributes, one option
//   hard:   three attributes (as many as the product has), every option
// The price limit follows WebShop's get_synthetic_goals: of the first four multiples of ten above
// the product's price, two are drawn and the larger is the limit.
import { SeededRng } from '../../runtime/rng.ts';
import type { Difficulty } from '../types.ts';
import { PRODUCT_TYPES, shopCatalog } from './catalog.ts';
import type { ShopGoal } from './reward.ts';

const LEVELS: Record<Difficulty, { attributes: number; options: 'none' | 'one' | 'all' }> = {
  easy: { attributes: 1, options: 'none' },
  medium: { attributes: 2, options: 'one' },
  hard: { attributes: 3, options: 'all' },
};

const PRICE_STEPS = Array.from({ length: 99 }, (_, i) => 10 * (i + 1));

export function shopGoal(difficulty: Difficulty, seed: number): ShopGoal {
  const rng = new SeededRng(seed);
  const level = LEVELS[difficulty];
  const products = shopCatalog();
  const product = products[rng.int(products.length)];
  const type = PRODUCT_TYPES[product.type];
  const attributes = rng.shuffle([...product.attributes]).slice(0, Math.min(level.attributes, product.attributes.length));
  const keys = Object.keys(product.options).sort();
  const askedKeys = level.options === 'none' ? [] : level.options === 'all' ? keys : [keys[rng.int(keys.length)]];
  const options: Record<string, string> = {};
  for (const k of askedKeys) options[k] = product.options[k][rng.int(product.options[k].length)];
  const steps = PRICE_STEPS.filter((p) => p > product.price).slice(0, 4);
  let priceUpper = 1_000_000;
  let priceText = '';
  if (steps.length >= 2) {
    const [a, b] = rng.shuffle([...steps]).slice(0, 2);
    priceUpper = Math.max(a, b);
    priceText = `, and price lower than ${priceUpper.toFixed(2)} dollars`;
  }
  const lead = ['i need a', "i'm looking for a", 'i want to buy a'][rng.int(3)];
  const attributeText = attributes.length > 1 ? `${attributes.slice(0, -1).join(', ')} and ${attributes[attributes.length - 1]}` : attributes[0];
  const optionText = Object.keys(options).length ? ` with ${Object.entries(options).map(([k, v]) => `${k}: ${v}`).join(', and ')}` : '';
  return {
    asin: product.asin,
    query: product.query,
    category: product.category,
    nouns: product.nouns,
    attributes,
    options,
    priceUpper,
    text: `${lead} ${type.goalNoun} that is ${attributeText}${optionText}${priceText}`,
  };
}

export function shopTaskKey(goal: ShopGoal): string {
  return JSON.stringify([goal.asin, goal.attributes, goal.options, goal.priceUpper, goal.text]);
}
