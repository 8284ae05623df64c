import { describe, expect, it } from 'vitest';
import { DIFFICULTIES, NOTHING_HAPPENS, environment, taskSet } from '../../../main/engine/envs/index.ts';
import { productByAsin, shopCatalog, type Product } from '../../../main/engine/envs/shop/catalog.ts';
import { ratio, tokenSetRatio } from '../../../main/engine/envs/shop/fuzz.ts';
import { normalizeColor, shopReward, typeReward, type ShopGoal } from '../../../main/engine/envs/shop/reward.ts';
import { ShopEnv } from '../../../main/engine/envs/shop/site.ts';
import { shopGoal } from '../../../main/engine/envs/shop/tasks.ts';

const HOODIE: Product = {
  asin: 'B0TEST0001',
  title: 'Acme Fleece Lined Pullover Hoodie',
  nouns: ['acme', 'hoodie'],
  query: "men's hoodies",
  category: 'clothing › men › hoodies',
  attributes: ['fleece lined', 'machine washable'],
  bulletPoints: ['Fleece Lined.', 'Machine Washable.'],
  description: 'A warm top for cold days.',
  options: { size: ['medium', 'large', 'x-large'], color: ['black', 'light blue'] },
  price: 34.99,
  type: 0,
};

const GOAL: ShopGoal = {
  asin: 'B0TEST0001',
  query: "men's hoodies",
  category: 'clothing › men › hoodies',
  nouns: ['acme', 'hoodie'],
  attributes: ['fleece lined', 'machine wash', 'drawstring closure'],
  options: { color: 'navy blue', size: 'large' },
  priceUpper: 40,
  text: 'i need a pullover hoodie that is fleece lined, machine wash and drawstring closure with color: navy blue, and size: large, and price lower than 40.00 dollars',
};

describe('token_set_ratio', () => {
  it('scores as thefuzz does, by hand', () => {
    // t0 = "machine", t1 = "machine wash", t2 = "machine washable": ratio(t1, t2) = 2·12/(12+16) = 85.7 → 86
    expect(tokenSetRatio('machine wash', 'machine washable')).toBe(86);
    // t0 = "roast", t1 = "roast medium", t2 = "roast dark": 59, 67 (2·5/15), 64 → 67
    expect(tokenSetRatio('medium roast', 'dark roast')).toBe(67);
    // The same tokens in another order or case, with punctuation: one set inside the other.
    expect(tokenSetRatio('Fleece-Lined', 'lined fleece')).toBe(100);
    expect(tokenSetRatio('sulfate free', 'free')).toBe(100);
    expect(tokenSetRatio('', 'free')).toBe(0);
    expect(ratio('abcd', 'abce')).toBe(75);
  });

  it('normalises colours to the first base colour they contain, alphabetically', () => {
    expect(normalizeColor('navy blue')).toBe('blue');
    expect(normalizeColor('light blue')).toBe('blue');
    expect(normalizeColor('olive green')).toBe('green');
    expect(normalizeColor('tea tree')).toBe('tea tree');
  });
});

describe("the shop's partial-credit reward (WebShop get_reward), number by number", () => {
  it('counts attributes, options and price over their total, times the type reward', () => {
    // attributes: "fleece lined" (100), "machine wash" (86 against "machine washable"); "drawstring
    // closure" nowhere → 2 of 3. options: size "large" exactly; colour "light blue" → "blue" =
    // "navy blue" → "blue" → 2 of 2. price 34.99 ≤ 40 → 1. (2 + 2 + 1) / (3 + 2 + 1) = 5/6; type 1.
    const r = shopReward(HOODIE, GOAL, 34.99, { size: 'large', color: 'light blue' });
    expect(r).toMatchObject({ attributeMatches: 2, optionMatches: 2, rPrice: 1, rType: 1, queryMatch: true, categoryMatch: true, titleScore: 1 });
    expect(r.reward).toBeCloseTo(5 / 6, 12);
    // size "x-large" is not "large" (sizes match exactly), colour not clicked, price 45 > 40: 2/6.
    expect(shopReward(HOODIE, GOAL, 45, { size: 'x-large' }).reward).toBeCloseTo(2 / 6, 12);
    // The price at the limit passes; everything asked: 6/6.
    const all: ShopGoal = { ...GOAL, attributes: ['fleece lined', 'machine wash'], options: { size: 'large' } };
    expect(shopReward(HOODIE, all, 40, { size: 'large' }).reward).toBe(1);
    // An attribute found only in the description counts (substring, lower case).
    const described: ShopGoal = { ...GOAL, attributes: ['cold days'], options: {} };
    expect(shopReward(HOODIE, described, 34.99, {}).reward).toBe(1);
  });

  it('scales by the type reward: query, category levels, title nouns', () => {
    const other = { ...GOAL, query: 'bath towels', category: 'home › bath › towels' };
    // No query or category match; nouns 2 of 2 → 1.
    expect(typeReward(HOODIE, other)).toEqual({ rType: 1, queryMatch: false, categoryMatch: false, titleScore: 1 });
    // 1 of 5 nouns = 0.2, not above 0.2 → 0.5.
    const five = { ...other, nouns: ['zeta', 'hoodie', 'pullover', 'fleece', 'men'] };
    expect(typeReward(HOODIE, five).rType).toBe(0.5);
    // Two shared category levels are a match: 1 again.
    expect(typeReward(HOODIE, { ...five, category: 'clothing › men › shoes' })).toMatchObject({ rType: 1, categoryMatch: true });
    // 1 of 11 nouns < 0.1 → 0.1; none → 0; a goal without nouns counts 0.2.
    const eleven = { ...other, nouns: ['hoodie', ...'abcdefghij'.split('')] };
    expect(typeReward(HOODIE, eleven).rType).toBe(0.1);
    expect(typeReward(HOODIE, { ...other, nouns: ['towel'] }).rType).toBe(0);
    expect(typeReward(HOODIE, { ...other, nouns: [] })).toMatchObject({ rType: 0.5, titleScore: 0.2 });
    // The whole reward with type 0.5: 5/6 · 0.5.
    expect(shopReward(HOODIE, five, 34.99, { size: 'large', color: 'light blue' }).reward).toBeCloseTo(5 / 12, 12);
  });
});

describe('shop rules', () => {
  const task = { env: 'shop', difficulty: 'hard' as const, seed: 5 };

  it('starts on the search page in WebShop\'s text and answers malformed actions with "Nothing happens."', () => {
    const env = new ShopEnv();
    const r = env.reset(task);
    expect(r.observation).toBe(`WebShop [SEP] Instruction: [SEP] ${r.task} [SEP] Search`);
    expect(r.admissibleActions).toEqual(['search[<your query>]']);
    for (const a of ['', 'search', 'search[]', 'search[   ]', 'click[buy now]', 'click[next >]', 'buy now', '[search]', 'search[hoodie', 'x'.repeat(100_000), '\u0000', 'jump[hoodie]']) {
      expect(env.step(a), JSON.stringify(a.slice(0, 30))).toMatchObject({ observation: NOTHING_HAPPENS, done: false, success: false, reward: 0 });
    }
    expect(env.admissibleActions()).toEqual(['search[<your query>]']);
  });

  it('pages through results, opens products, picks options, reads pages, and buys with the partial-credit reward', () => {
    const env = new ShopEnv();
    env.reset(task);
    // "free" is in many products' attributes: more than one page.
    const results = env.step('search[free]');
    expect(results.observation).toMatch(/^Instruction: \[SEP\] .* \[SEP\] Back to Search \[SEP\] Page 1 \(Total results: (\d+)\) \[SEP\] Next > \[SEP\] B0/);
    expect(results.admissibleActions.slice(0, 2)).toEqual(['click[back to search]', 'click[next >]']);
    expect(results.admissibleActions.filter((a) => /^click\[b0/.test(a))).toHaveLength(10);
    expect(env.step('search[hoodie]').observation).toBe(NOTHING_HAPPENS);
    const page2 = env.step('click[next >]');
    expect(page2.observation).toContain('Page 2 (Total results:');
    expect(page2.admissibleActions).toContain('click[< prev]');
    expect(env.step('click[< prev]').observation).toContain('Page 1 (Total results:');
    const first = results.admissibleActions.find((a) => /^click\[b0/.test(a))!;
    const asin = first.slice(6, -1);
    const product = productByAsin(asin)!;
    const item = env.step(`Click[${asin.toUpperCase()}]`);
    expect(item.observation).toContain(`[SEP] Back to Search [SEP] < Prev [SEP] `);
    expect(item.observation).toContain(`${product.title} [SEP] Price: $${product.price.toFixed(2)} [SEP] Rating: N.A. [SEP] Description [SEP] Features [SEP] Buy Now`);
    expect(env.step('click[no such option]').observation).toBe(NOTHING_HAPPENS);
    expect(env.step('click[description]').observation).toMatch(new RegExp(`< Prev \\[SEP\\] ${product.description.replace(/[.()$]/g, '\\$&')}$`));
    expect(env.step('click[< prev]').observation).toBe(item.observation);
    expect(env.step('click[features]').observation).toMatch(/< Prev \[SEP\] .+\.$/);
    env.step('click[< prev]');
    const [key, values] = Object.entries(product.options)[0];
    env.step(`click[${values[0]}]`);
    expect(env.options).toEqual({ [key]: values[0] });
    const bought = env.step('click[buy now]');
    const expected = shopReward(product, env.goal, product.price, { [key]: values[0] });
    expect(bought).toMatchObject({ done: true, reward: expected.reward, success: expected.reward >= 1, admissibleActions: [] });
    expect(bought.observation).toBe(`Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] ${expected.reward}`);
    expect(env.step('click[buy now]')).toMatchObject({ observation: NOTHING_HAPPENS, done: true, reward: 0, success: false });
  });

  it('"back to search" forgets the product and its options', () => {
    const env = new ShopEnv();
    env.reset(task);
    const res = env.step('search[coffee mug]');
    env.step(res.admissibleActions.find((a) => /^click\[b0/.test(a))!);
    const option = env.admissibleActions().find((a) => !['click[back to search]', 'click[< prev]', 'click[description]', 'click[features]', 'click[buy now]'].includes(a))!;
    env.step(option);
    expect(Object.keys(env.options)).toHaveLength(1);
    expect(env.step('click[back to search]').observation).toBe(`Instruction: [SEP] ${env.goal.text} [SEP] Search`);
    expect(env.options).toEqual({});
  });
});

describe('shop tasks', () => {
  it('are reproducible and follow their difficulty, with WebShop\'s price limits', () => {
    expect(shopGoal('medium', 9)).toEqual(shopGoal('medium', 9));
    for (const difficulty of DIFFICULTIES) {
      for (let seed = 0; seed < 200; seed++) {
        const g = shopGoal(difficulty, seed);
        const p = productByAsin(g.asin)!;
        const n = { easy: 1, medium: 2, hard: Math.min(3, p.attributes.length) }[difficulty];
        expect(g.attributes).toHaveLength(n);
        const keys = Object.keys(g.options);
        expect(keys).toHaveLength({ easy: 0, medium: 1, hard: Object.keys(p.options).length }[difficulty]);
        for (const k of keys) expect(p.options[k]).toContain(g.options[k]);
        // Of the first four multiples of ten above the price, the larger of two: never the first.
        const steps = Array.from({ length: 99 }, (_, i) => 10 * (i + 1)).filter((x) => x > p.price).slice(0, 4);
        expect(steps.slice(1)).toContain(g.priceUpper);
        expect(g.text).toContain(`, and price lower than ${g.priceUpper.toFixed(2)} dollars`);
        // The goal's own product scores 1 with the asked options.
        expect(shopReward(p, g, p.price, g.options).reward).toBe(1);
      }
    }
    expect(shopCatalog()).toHaveLength(130);
    expect(new Set(shopCatalog().map((p) => p.asin)).size).toBe(130);
  });

  it('the scripted expert buys the right thing (reward 1) on every task of every difficulty and split', () => {
    const def = environment('shop');
    for (const difficulty of DIFFICULTIES) {
      for (const split of ['train', 'test'] as const) {
        for (const task of taskSet({ env: 'shop', difficulty, count: 60, seed: 11, split })) {
          const env = def.create();
          env.reset(task);
          let last;
          for (let i = 0; i < 30; i++) {
            const a = env.expertAction();
            if (!a) break;
            last = env.step(a);
            expect(last.observation, a).not.toBe(NOTHING_HAPPENS);
          }
          expect(last, JSON.stringify(task)).toMatchObject({ done: true, success: true, reward: 1 });
        }
      }
    }
  });
});
