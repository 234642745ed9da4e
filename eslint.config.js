// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The core is pure: it decides, adapters act. Keep IO libraries out of it.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: ['@kubernetes/*', '@octokit/*', 'execa', 'zx', 'node:fs*', 'node:child_process', 'listr2'],
        },
      ],
    },
  },
  {
    // The process (argv, env, cwd, streams, signals, exit) belongs to the CLI layer; everything
    // below gets what it needs handed down (see DEVELOPERS.md; .dependency-cruiser.mjs checks imports).
    files: ['src/**/*.ts'],
    ignores: ['src/cli.ts', 'src/cli/**'],
    rules: {
      'no-restricted-globals': ['error', { name: 'process', message: 'only src/cli* touches process: take env, cwd or streams as parameters' }],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
);
