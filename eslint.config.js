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
    // SQL lives in main/db/ (functions per table family); the rest of the app calls those.
    files: ['main/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', 'resources/**/*.ts'],
    ignores: ['main/db/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.property.name='stmt']", message: 'SQL lives in main/db/: add a function there and call it.' },
        { selector: "MemberExpression[property.name='sql'][object.property.name='db'], MemberExpression[property.name='sql'][object.name='db']", message: 'SQL lives in main/db/: add a function there and call it.' },
      ],
    },
  },
  {
    // The contract is read by the main process, the renderer and the preload: it imports nothing of the app.
    files: ['contract/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['./*', '../*'], message: 'contract/ imports nothing but zod: the main process, the renderer and the preload all load it.' }] }] },
  },
  {
    // The engine is below the app: it imports neither the run layer nor what serves the app
    // (the worker's entry composes the engine's commands with the app's: main/worker-commands.ts).
    files: ['main/engine/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/runs/*', '**/api/*', '**/cli/*', '**/cluster/*', '**/server/*', '**/shell/*', '**/serve-model/*', '**/worker-commands.ts', '**/backend.ts'],
              message: 'main/engine/ is below the app: move what it needs down, or have the layer above pass it in.',
            },
          ],
        },
      ],
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
