// For machines that can download VS Code: `npx @vscode/test-cli` (with
// @vscode/test-cli and @vscode/test-electron installed) runs the integration
// suite inside a downloaded VS Code. This repository's own end-to-end tests
// (npm run test:e2e) drive code-server instead, which installs from npm.
import { defineConfig } from '@vscode/test-cli';

export default defineConfig({
  label: 'integration',
  files: 'test/integration/**/*.test.cjs',
  version: '1.100.3',
  workspaceFolder: './test/integration/workspace',
  mocha: { ui: 'tdd', timeout: 120000 },
});
