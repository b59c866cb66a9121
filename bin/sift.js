#!/usr/bin/env node
// The `sift` command: the bundled CLI. `npm run build` writes dist/cli.js.
'use strict';
const path = require('path');
const fs = require('fs');
const cli = path.join(__dirname, '..', 'dist', 'cli.js');
if (!fs.existsSync(cli)) {
  process.stderr.write(`sift: ${cli} is missing. Run \`npm run build\` in ${path.dirname(__dirname)} first.\n`);
  process.exit(2);
}
require(cli);
