import tseslint from 'typescript-eslint';

// Layering (STYLE.md): pki and profiles know nothing of HTTP, storage, SSH or Kubernetes;
// only pki touches node-forge; the domain never imports the web layer.
const noOutside = (extra = []) => ({
  'no-restricted-imports': [
    'error',
    {
      patterns: [
        { group: ['express', 'express-*', 'helmet', 'better-sqlite3', 'ssh2', '@kubernetes/*', 'node:fs', 'fs', ...extra], message: 'pure module: no I/O libraries here' },
        { group: ['**/web/**', '**/store/sqlite*', '**/cli/**'], message: 'layering: the domain does not import outer layers' },
      ],
    },
  ],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'public/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/pki/**'],
    rules: { 'no-restricted-imports': ['error', { paths: [{ name: 'node-forge', message: 'only src/pki uses node-forge' }] }] },
  },
  { files: ['src/pki/**/*.ts'], rules: noOutside() },
  { files: ['src/profiles/**/*.ts'], rules: noOutside(['node-forge']) },
);
