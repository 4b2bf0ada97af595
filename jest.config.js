// Two projects: unit specs beside the code (no database), and HTTP-level tests in test/ against a
// real PostgreSQL resolved once per run by test/support/global-setup.ts.
const transform = {
  '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      rootDir: '.',
      testMatch: ['<rootDir>/src/**/*.spec.ts'],
      transform,
    },
    {
      displayName: 'e2e',
      testEnvironment: 'node',
      rootDir: '.',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      transform,
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
  maxWorkers: 2,
  // Process and embedded-database tests start real servers, on machines that may be busy: a hang
  // still fails, just later (every wait inside a test has its own deadline, test/support/waiting.ts).
  testTimeout: 300000,
};
