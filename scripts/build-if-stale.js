#!/usr/bin/env node
// `npm start` builds first when dist/ is missing or older than any file under src/.
const { existsSync, readdirSync, statSync } = require('node:fs');
const { join } = require('node:path');
const { execSync } = require('node:child_process');

const root = join(__dirname, '..');
const entry = join(root, 'dist', 'main.js');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

const stale =
  !existsSync(entry) ||
  newestMtime(join(root, 'src')) > statSync(entry).mtimeMs ||
  ['package.json', 'tsconfig.json', 'tsconfig.build.json'].some(
    (file) => statSync(join(root, file)).mtimeMs > statSync(entry).mtimeMs,
  );
if (stale) {
  console.log('building (dist/ is missing or older than src/)...');
  execSync('npx nest build', { cwd: root, stdio: 'inherit' });
}
