/** Architecture rules, checked by `npm run lint`. */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'producers-and-consumers-are-independent',
      comment: 'Producers and consumers share code only through shared/.',
      severity: 'error',
      from: { path: '^producers/' },
      to: { path: '^consumers/' },
    },
    {
      name: 'consumers-do-not-import-producers',
      severity: 'error',
      from: { path: '^consumers/' },
      to: { path: '^producers/' },
    },
    {
      name: 'deployed-code-never-imports-local-or-test',
      comment: 'Handlers run in Lambda: the local stack and tests are not deployed.',
      severity: 'error',
      from: { path: '^(producers|consumers|shared)/' },
      to: { path: '^(local|test|bench)/' },
    },
    {
      name: 'shared-depends-on-nothing-of-ours',
      severity: 'error',
      from: { path: '^shared/' },
      to: { path: '^(producers|consumers|cdk)/' },
    },
    {
      name: 'no-dev-dependencies-in-deployed-code',
      severity: 'error',
      from: { path: '^(producers|consumers|shared)/', pathNot: '^cli/' },
      to: { dependencyTypes: ['npm-dev'] },
    },
  ],
  options: {
    includeOnly: '^(cdk|producers|consumers|shared|local|bench|dashboard|cli|test)/',
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js'],
    },
  },
};
