// The shop's pages and actions, as WebShop's text environment shows them in its "simple" mode
// (every visible text of the page joined by " [SEP] "): a search page, results pages of ten with
// "Next >" and "< Prev", product pages with their options, "Description" and "Features" pages, and
// "Buy Now", which ends the episode with WebShop's partial-credit reward. Actions are
// `search[words]` (on the search page) and `click[text]` with a clickable's text in lower case;
// anything else gets "Nothing happens." and changes nothing.
import { NOTHING_HAPPENS, type Environment, type ResetResult, type StepResult, type TaskRef } from '../types.ts';
import { productByAsin, shopCatalog, type Product } from './catalog.ts';
import { shopReward, type RewardParts, type ShopGoal } from './reward.ts';
import { PER_PAGE, SearchIndex } from './search.ts';
import { shopGoal } from './tasks.ts';

type Page = 'search' | 'results' | 'item' | 'description' | 'features' | 'done';

const SEP = ' [SEP] ';
let index: SearchIndex | undefined;

function searchIndex(): SearchIndex {
  return (index ??= new SearchIndex(shopCatalog()));
}

/** WebShop's parse_action: `name[argument]`. */
function parseAction(action: string): { name: string; arg: string } | undefined {
  const m = /^\s*([a-z_]+)\s*\[(.*)\]\s*\.?\s*$/is.exec(action);
  if (!m) return undefined;
  return { name: m[1].toLowerCase(), arg: m[2].trim().toLowerCase() };
}

export class ShopEnv implements Environment {
  private goalValue: ShopGoal | undefined;
  private page: Page = 'search';
  private keywords = '';
  private results: Product[] = [];
  private pageNumber = 1;
  private product: Product | undefined;
  private chosen: Record<string, string> = {};
  private outcome: RewardParts | undefined;
  /** The expert's searches so far this episode (it widens its query once if the first misses). */
  private expertSearches = 0;

  reset(ref: TaskRef): ResetResult {
    this.goalValue = shopGoal(ref.difficulty, ref.seed);
    this.page = 'search';
    this.keywords = '';
    this.results = [];
    this.pageNumber = 1;
    this.product = undefined;
    this.chosen = {};
    this.outcome = undefined;
    this.expertSearches = 0;
    return { observation: `WebShop${SEP}${this.render()}`, task: this.goal.text, admissibleActions: this.admissibleActions() };
  }

  get goal(): ShopGoal {
    if (!this.goalValue) throw new Error('the shop environment has no task yet: call reset(task) first');
    return this.goalValue;
  }

  /** The purchase's reward and its parts, once something is bought. */
  get purchase(): RewardParts | undefined {
    return this.outcome;
  }

  get options(): Readonly<Record<string, string>> {
    return this.chosen;
  }

  private shown(): Product[] {
    return this.results.slice((this.pageNumber - 1) * PER_PAGE, this.pageNumber * PER_PAGE);
  }

  private hasNext(): boolean {
    return this.pageNumber * PER_PAGE < this.results.length;
  }

  private render(): string {
    const head = `Instruction:${SEP}${this.goal.text}`;
    const p = this.product;
    switch (this.page) {
      case 'search':
        return `${head}${SEP}Search`;
      case 'results': {
        const nav = [...(this.pageNumber > 1 ? ['< Prev'] : []), ...(this.hasNext() ? ['Next >'] : [])];
        const items = this.shown().flatMap((x) => [x.asin, x.title, `$${x.price.toFixed(2)}`]);
        return [head, 'Back to Search', `Page ${this.pageNumber} (Total results: ${this.results.length})`, ...nav, ...items].join(SEP);
      }
      case 'item': {
        const options = Object.entries(p!.options).flatMap(([k, vs]) => [k, ...vs]);
        return [head, 'Back to Search', '< Prev', ...options, p!.title, `Price: $${p!.price.toFixed(2)}`, 'Rating: N.A.', 'Description', 'Features', 'Buy Now'].join(SEP);
      }
      case 'description':
        return [head, 'Back to Search', '< Prev', p!.description].join(SEP);
      case 'features':
        return [head, 'Back to Search', '< Prev', ...p!.bulletPoints].join(SEP);
      case 'done':
        return ['Thank you for shopping with us!', 'Your score (min 0.0, max 1.0)', String(this.outcome!.reward)].join(SEP);
    }
  }

  /** The clickable texts of the current page, lower case, as WebShop's get_available_actions lists them. */
  clickables(): string[] {
    switch (this.page) {
      case 'search':
      case 'done':
        return [];
      case 'results':
        return ['back to search', ...(this.pageNumber > 1 ? ['< prev'] : []), ...(this.hasNext() ? ['next >'] : []), ...this.shown().map((x) => x.asin.toLowerCase())];
      case 'item':
        return ['back to search', '< prev', ...Object.values(this.product!.options).flat(), 'description', 'features', 'buy now'];
      case 'description':
      case 'features':
        return ['back to search', '< prev'];
    }
  }

  admissibleActions(): string[] {
    if (!this.goalValue) return [];
    return [...(this.page === 'search' ? ['search[<your query>]'] : []), ...this.clickables().map((c) => `click[${c}]`)];
  }

  step(action: string): StepResult {
    if (!this.goalValue) throw new Error('the shop environment has no task yet: call reset(task) first');
    const acted = this.page !== 'done' && this.apply(action);
    const done = this.page === 'done';
    const bought = acted && done;
    const reward = bought ? this.outcome!.reward : 0;
    return {
      observation: acted ? this.render() : NOTHING_HAPPENS,
      done,
      success: bought && reward >= 1,
      reward,
      admissibleActions: this.admissibleActions(),
    };
  }

  private apply(action: string): boolean {
    const parsed = parseAction(action);
    if (!parsed) return false;
    const { name, arg } = parsed;
    if (name === 'search') {
      if (this.page !== 'search' || !arg) return false;
      this.keywords = arg;
      this.results = searchIndex().search(arg);
      this.pageNumber = 1;
      this.page = 'results';
      return true;
    }
    if (name !== 'click' || !this.clickables().includes(arg)) return false;
    if (arg === 'back to search') {
      this.page = 'search';
      this.product = undefined;
      this.chosen = {};
      return true;
    }
    if (this.page === 'results') {
      if (arg === 'next >') this.pageNumber++;
      else if (arg === '< prev') this.pageNumber--;
      else {
        this.product = productByAsin(arg)!;
        this.chosen = {};
        this.page = 'item';
      }
      return true;
    }
    if (this.page === 'description' || this.page === 'features') {
      this.page = 'item'; // "< prev"
      return true;
    }
    // The product page.
    const product = this.product!;
    if (arg === '< prev') {
      this.page = 'results';
      this.product = undefined;
      this.chosen = {};
    } else if (arg === 'description' || arg === 'features') {
      this.page = arg;
    } else if (arg === 'buy now') {
      this.outcome = shopReward(product, this.goal, product.price, this.chosen);
      this.page = 'done';
    } else {
      const key = Object.keys(product.options).find((k) => product.options[k].includes(arg))!;
      this.chosen[key] = arg;
    }
    return true;
  }

  expertAction(): string | undefined {
    if (!this.goalValue || this.page === 'done') return undefined;
    const action = shopExpert(this.goal, this.page, this.shown(), this.hasNext(), this.product, this.chosen, this.expertSearches);
    if (action.startsWith('search[')) this.expertSearches++;
    return action;
  }
}

/**
 * The scripted expert: search for the goal's product words and attributes, page through the
 * results to the goal's product (widening the search to its title if the first misses), pick
 * each asked option, buy. Scores 1 on every generated task.
 */
function shopExpert(goal: ShopGoal, page: Page, shown: Product[], hasNext: boolean, product: Product | undefined, chosen: Record<string, string>, searches: number): string {
  const target = productByAsin(goal.asin)!;
  switch (page) {
    case 'search': {
      const words = searches === 0 ? `${goal.attributes.join(' ')} ${goal.nouns.slice(1).join(' ')}` : target.title.toLowerCase();
      return `search[${words}]`;
    }
    case 'results':
      if (shown.some((x) => x.asin === target.asin)) return `click[${target.asin.toLowerCase()}]`;
      return hasNext ? 'click[next >]' : 'click[back to search]';
    case 'description':
    case 'features':
      return 'click[< prev]';
    case 'item': {
      if (product?.asin !== target.asin) return 'click[< prev]';
      const missing = Object.entries(goal.options).find(([k, v]) => chosen[k] !== v);
      return missing ? `click[${missing[1]}]` : 'click[buy now]';
    }
    case 'done':
      throw new Error('shop expert: the episode is over');
  }
}
