import tseslint from 'typescript-eslint';

// Layering, lowest first: lib → config/pki/store → profiles/openvpn → services → cluster/gateway → web/cli.
// pki and profiles know nothing of HTTP, storage, SSH or Kubernetes (they stay pure and testable without
// I/O); only pki touches node-forge; the domain never imports the web layer.
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
  // The store is asynchronous: a forgotten await (`if (store.getUser(…))` on a Promise, a write whose
  // failure nobody sees) must be a lint error, not a silent bug.
  {
    files: ['src/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/pki/**'],
    rules: { 'no-restricted-imports': ['error', { paths: [{ name: 'node-forge', message: 'only src/pki uses node-forge' }] }] },
  },
  { files: ['src/pki/**/*.ts'], rules: noOutside() },
  { files: ['src/profiles/**/*.ts'], rules: noOutside(['node-forge']) },
  // Access rules and their compilers are pure too: the watch and the nft calls live at the edge (openvpn/).
  { files: ['src/access/**/*.ts'], rules: noOutside(['node-forge', 'node:child_process']) },
  // The web layer reaches data only through the AppContext it is handed (the services, and the store they
  // opened): it never loads a store module itself, so it cannot open or migrate a database of its own.
  // Type imports from store/types.js (record shapes such as CertRecord, and the narrow store interfaces a
  // piece is handed) are allowed.
  {
    files: ['src/web/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [
        { group: ['**/store/*', '!**/store/types.js'], message: 'web goes through services: only types from store/types.js' },
        { group: ['**/store/types.js'], allowTypeImports: true, message: 'web goes through services: only types from store/types.js' },
      ] }],
    },
  },
);
