// The shop's search engine: BM25 (k1 1.2, b 0.75, as Lucene and pyserini, which WebShop uses)
// over each product's title, bullet points and description; the top 50 come back, ten a page,
// as WebShop shows them.
import type { Product } from './catalog.ts';

export const MAX_RESULTS = 50;
export const PER_PAGE = 10;
const K1 = 1.2;
const B = 0.75;

export function searchTokens(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, ' ')
    .trim()
    .split(' ')
    .filter(Boolean);
}

export class SearchIndex {
  private readonly docs: { product: Product; tf: Map<string, number>; length: number }[];
  private readonly df = new Map<string, number>();
  private readonly avgLength: number;

  constructor(products: Product[]) {
    this.docs = products.map((product) => {
      const words = searchTokens([product.title, ...product.bulletPoints, product.description].join(' '));
      const tf = new Map<string, number>();
      for (const w of words) tf.set(w, (tf.get(w) ?? 0) + 1);
      for (const w of tf.keys()) this.df.set(w, (this.df.get(w) ?? 0) + 1);
      return { product, tf, length: words.length };
    });
    this.avgLength = this.docs.reduce((s, d) => s + d.length, 0) / Math.max(1, this.docs.length);
  }

  /** The best matches, best first (ties by ASIN), at most MAX_RESULTS; none without a common word. */
  search(query: string): Product[] {
    const terms = searchTokens(query);
    const n = this.docs.length;
    const scored: { product: Product; score: number }[] = [];
    for (const d of this.docs) {
      let score = 0;
      for (const t of terms) {
        const f = d.tf.get(t);
        if (!f) continue;
        const df = this.df.get(t)!;
        const idf = Math.log(1 + (n - df + 0.5) / (df + 0.5));
        score += (idf * f * (K1 + 1)) / (f + K1 * (1 - B + (B * d.length) / this.avgLength));
      }
      if (score > 0) scored.push({ product: d.product, score });
    }
    scored.sort((a, b) => b.score - a.score || a.product.asin.localeCompare(b.product.asin));
    return scored.slice(0, MAX_RESULTS).map((s) => s.product);
  }
}
