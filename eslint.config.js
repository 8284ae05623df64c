// Lint: the recommended JavaScript and typescript-eslint rules, nothing exotic; the renderer's
// Svelte components with eslint-plugin-svelte's recommended rules.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import svelte from 'eslint-plugin-svelte';

export default tseslint.config(
  { ignores: ['node_modules/', 'out/', 'dist/', '**/*.d.ts', 'bench/reference/.venv/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...svelte.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Svelte components (and rune modules) with TypeScript in their scripts.
    files: ['renderer/**/*.svelte', 'renderer/**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'] } },
  },
  {
    // Browser code: TypeScript (svelte-check) already knows the DOM globals.
    files: ['renderer/**'],
    rules: { 'no-undef': 'off' },
  },
);
