import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/results/**', 'docs/**', 'api/**', 'tmp/**', '.venv*/**']},
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {globals: {console: 'readonly', process: 'readonly', __dirname: 'readonly', require: 'readonly', module: 'writable'}},
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', {argsIgnorePattern: '^_', varsIgnorePattern: '^_'}],
    },
  },
  {files: ['**/*.js', '**/*.cjs'], rules: {'@typescript-eslint/no-require-imports': 'off'}},
);
