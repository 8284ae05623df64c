// The shop's catalogue: product types in WebShop's spirit (a search query family, an Amazon-style
// category path, attributes, buying options such as size and colour, a price band), and products
// drawn from them once, from a fixed seed, so every task of every run sees the same shop.
// Brands are invented. A product's `nouns` stand in for the nouns spaCy tags in its title (the
// brand and the product words), which WebShop's type reward compares.
import { SeededRng } from '../../runtime/rng.ts';

export interface ProductType {
  /** What a goal asks for ("pullover hoodie"). */
  goalNoun: string;
  /** The end of every title of this type ("Pullover Hoodie"). */
  titleNoun: string;
  /** The title's nouns, lower case. */
  nouns: string[];
  query: string;
  category: string;
  attributes: string[];
  options: Record<string, string[]>;
  price: [number, number];
}

export interface Product {
  asin: string;
  title: string;
  /** The brand and the type's nouns, lower case (spaCy's noun tokens of the title in WebShop). */
  nouns: string[];
  query: string;
  category: string;
  attributes: string[];
  bulletPoints: string[];
  description: string;
  /** Option name → the values this product offers, in the type's order. */
  options: Record<string, string[]>;
  price: number;
  /** Index into PRODUCT_TYPES. */
  type: number;
}

export const PRODUCT_TYPES: ProductType[] = [
  {
    goalNoun: 'pullover hoodie',
    titleNoun: 'Pullover Hoodie',
    nouns: ['hoodie'],
    query: "men's hoodies",
    category: 'clothing, shoes & jewelry › men › clothing › fashion hoodies & sweatshirts',
    attributes: ['machine wash', 'long sleeve', 'fleece lined', 'drawstring closure', 'relaxed fit', 'polyester cotton'],
    options: { size: ['small', 'medium', 'large', 'x-large', 'xx-large'], color: ['black', 'navy blue', 'heather grey', 'olive green', 'burgundy'] },
    price: [19, 59],
  },
  {
    goalNoun: 'crew neck t-shirt',
    titleNoun: 'Crew Neck T-Shirt',
    nouns: ['shirt'],
    query: "women's t-shirts",
    category: 'clothing, shoes & jewelry › women › clothing › tops, tees & blouses',
    attributes: ['short sleeve', 'machine wash', 'cotton spandex', 'slim fit', 'moisture wicking'],
    options: { size: ['x-small', 'small', 'medium', 'large', 'x-large'], color: ['white', 'black', 'light blue', 'pink', 'charcoal'] },
    price: [9, 29],
  },
  {
    goalNoun: 'pair of running shoes',
    titleNoun: 'Running Shoes',
    nouns: ['shoes'],
    query: "men's running shoes",
    category: 'clothing, shoes & jewelry › men › shoes › athletic › running',
    attributes: ['rubber sole', 'lace up', 'non slip', 'memory foam', 'breathable mesh'],
    options: { size: ['7', '8', '9', '10', '11', '12'], color: ['black', 'grey', 'navy', 'red'] },
    price: [35, 119],
  },
  {
    goalNoun: 'shampoo',
    titleNoun: 'Shampoo',
    nouns: ['shampoo'],
    query: 'shampoo',
    category: 'beauty & personal care › hair care › shampoo & conditioner › shampoos',
    attributes: ['sulfate free', 'paraben free', 'natural ingredients', 'dry hair', 'cruelty free'],
    options: { size: ['8 fl oz', '16 fl oz', '32 fl oz'], scent: ['coconut', 'lavender', 'tea tree', 'unscented'] },
    price: [6, 34],
  },
  {
    goalNoun: 'face moisturizer',
    titleNoun: 'Face Moisturizer',
    nouns: ['face', 'moisturizer'],
    query: 'face moisturizer',
    category: 'beauty & personal care › skin care › face › creams & moisturizers',
    attributes: ['fragrance free', 'hyaluronic acid', 'sensitive skin', 'non greasy', 'spf 30'],
    options: { size: ['1.7 ounce', '3.4 ounce'] },
    price: [8, 48],
  },
  {
    goalNoun: 'box of protein bars',
    titleNoun: 'Protein Bars',
    nouns: ['protein', 'bars'],
    query: 'protein bars',
    category: 'grocery & gourmet food › snacks & sweets › bars › protein bars',
    attributes: ['gluten free', 'low sugar', 'high protein', 'plant based', 'non gmo'],
    options: { flavor: ['chocolate peanut butter', 'cookie dough', 'salted caramel', 'birthday cake'], size: ['12 count', '24 count'] },
    price: [14, 44],
  },
  {
    goalNoun: 'pack of green tea bags',
    titleNoun: 'Green Tea Bags',
    nouns: ['tea', 'bags'],
    query: 'green tea',
    category: 'grocery & gourmet food › beverages › tea › green tea',
    attributes: ['usda organic', 'sugar free', 'individually wrapped', 'natural flavors', 'kosher certified'],
    options: { flavor: ['jasmine', 'mint', 'lemon ginger', 'original'], size: ['20 count', '50 count', '100 count'] },
    price: [4, 24],
  },
  {
    goalNoun: 'bag of whole bean coffee',
    titleNoun: 'Whole Bean Coffee',
    nouns: ['bean', 'coffee'],
    query: 'whole bean coffee',
    category: 'grocery & gourmet food › beverages › coffee › whole coffee beans',
    attributes: ['medium roast', 'dark roast', 'fair trade', 'single origin', 'low acid'],
    options: { size: ['12 ounce', '2 pound'] },
    price: [9, 39],
  },
  {
    goalNoun: 'set of throw pillow covers',
    titleNoun: 'Throw Pillow Covers',
    nouns: ['pillow', 'covers'],
    query: 'throw pillow covers',
    category: 'home & kitchen › bedding › decorative pillows, inserts & covers › throw pillow covers',
    attributes: ['zipper closure', 'machine washable', 'living room', 'super soft', 'double sided'],
    options: { size: ['16 x 16 inch', '18 x 18 inch', '20 x 20 inch'], color: ['beige', 'navy blue', 'grey', 'mustard yellow', 'white'] },
    price: [8, 32],
  },
  {
    goalNoun: 'bath towel set',
    titleNoun: 'Bath Towel Set',
    nouns: ['bath', 'towel', 'set'],
    query: 'bath towels',
    category: 'home & kitchen › bath › towels › bath towels',
    attributes: ['quick dry', 'highly absorbent', 'hotel quality', 'machine washable', 'oeko tex certified'],
    options: { color: ['white', 'grey', 'navy blue', 'sage green'], size: ['2 pack', '4 pack', '6 pack'] },
    price: [15, 65],
  },
  {
    goalNoun: 'coffee mug',
    titleNoun: 'Coffee Mug',
    nouns: ['coffee', 'mug'],
    query: 'coffee mug',
    category: 'home & kitchen › kitchen & dining › dining & entertaining › cups, mugs & saucers › mugs',
    attributes: ['dishwasher safe', 'microwave safe', 'lead free', 'large capacity', 'gift box'],
    options: { size: ['11 oz', '15 oz'], color: ['white', 'black', 'blue', 'pink'] },
    price: [7, 27],
  },
  {
    goalNoun: 'pair of wireless earbuds',
    titleNoun: 'Wireless Earbuds',
    nouns: ['earbuds'],
    query: 'wireless earbuds',
    category: 'electronics › headphones, earbuds & accessories › headphones & earbuds › earbud headphones',
    attributes: ['noise cancelling', 'bluetooth 5.3', 'charging case', 'water resistant', 'long battery life'],
    options: { color: ['black', 'white', 'blue'] },
    price: [18, 98],
  },
  {
    goalNoun: 'phone case',
    titleNoun: 'Phone Case',
    nouns: ['phone', 'case'],
    query: 'phone case',
    category: 'cell phones & accessories › cases, holsters & sleeves › basic cases',
    attributes: ['shockproof', 'wireless charging', 'built-in kickstand', 'raised edges', 'anti scratch'],
    options: { color: ['black', 'clear', 'pink', 'blue', 'purple'] },
    price: [6, 26],
  },
];

const BRANDS = ['Northpeak', 'Lumora', 'Veltra', 'Corvia', 'Brisa', 'Kestrel', 'Maplehurst', 'Olvie', 'Quillon', 'Sorrel', 'Zephyra', 'Tandy'];

/** Products per type: enough near misses (same type, other attributes, options or price) to matter. */
export const PRODUCTS_PER_TYPE = 10;
const CATALOG_SEED = 20260407;
const ASIN_CHARS = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';

function titleCase(s: string): string {
  return s.replace(/\b[a-z]/g, (c) => c.toUpperCase());
}

function sample<T>(rng: SeededRng, items: readonly T[], n: number): T[] {
  return rng.shuffle([...items]).slice(0, n);
}

function makeCatalog(): Product[] {
  const rng = new SeededRng(CATALOG_SEED);
  const asins = new Set<string>();
  const products: Product[] = [];
  PRODUCT_TYPES.forEach((type, t) => {
    for (let i = 0; i < PRODUCTS_PER_TYPE; i++) {
      let asin: string;
      do {
        asin = 'B0' + Array.from({ length: 8 }, () => ASIN_CHARS[rng.int(ASIN_CHARS.length)]).join('');
      } while (asins.has(asin));
      asins.add(asin);
      const brand = BRANDS[rng.int(BRANDS.length)];
      const drawn = sample(rng, type.attributes, 2 + rng.int(3));
      const attributes = type.attributes.filter((a) => drawn.includes(a));
      const options: Record<string, string[]> = {};
      for (const [key, values] of Object.entries(type.options)) {
        const n = Math.min(values.length, 2 + rng.int(values.length - 1));
        const chosen = sample(rng, values, n);
        options[key] = values.filter((v) => chosen.includes(v));
      }
      const inTitle = rng.next() < 0.5 ? `${titleCase(attributes[0])} ` : '';
      const title = `${brand} ${inTitle}${type.titleNoun}`;
      const price = Math.floor(type.price[0] + rng.next() * (type.price[1] - type.price[0])) + 0.99;
      products.push({
        asin,
        title,
        nouns: [brand.toLowerCase(), ...type.nouns],
        query: type.query,
        category: type.category,
        attributes,
        bulletPoints: attributes.map((a) => `${titleCase(a)}.`),
        description: `The ${title}, from ${brand}.`,
        options,
        price,
        type: t,
      });
    }
  });
  return products;
}

let catalog: Product[] | undefined;

/** The shop's products (made once, the same on every machine). */
export function shopCatalog(): Product[] {
  return (catalog ??= makeCatalog());
}

export function productByAsin(asin: string): Product | undefined {
  return shopCatalog().find((p) => p.asin.toLowerCase() === asin.toLowerCase());
}
