// Runs ESLint's type-aware rules over src/. typescript-eslint needs TypeScript 5's compiler API, which the project's
// TypeScript 7 (the native compiler) does not offer: every `require('typescript')` made while linting is pointed at
// this folder's TypeScript 5, whichever node_modules the requiring package was hoisted into.
import Module, { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const ts5 = createRequire(import.meta.url).resolve('typescript');
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return request === 'typescript' ? ts5 : resolveFilename.call(this, request, ...rest);
};

const { ESLint } = await import('eslint');
const eslint = new ESLint({ cwd: resolve(here, '../..'), overrideConfigFile: resolve(here, 'eslint.config.js') });
const files = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const results = await eslint.lintFiles(files.length ? files : ['src/**/*.ts']);
const formatter = await eslint.loadFormatter(process.argv.includes('--json') ? 'json' : 'stylish');
process.stdout.write(await formatter.format(results));
process.exitCode = results.some((r) => r.errorCount > 0) ? 1 : 0;
