// Builds dist/ from src/: the page (index.html, style.css), the app and the
// verification worker as minified ES modules (esbuild, tree-shaking ECharts), and a
// gzip copy of each file. The output is committed; CI rebuilds it from the lockfile and
// fails on any difference, so the build must be deterministic.

import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, constants } from 'node:zlib';

// The event schemas, from the repository's schemas/ (the files the Rust code embeds),
// for the browser's validator (src/core/schema.js): sorted, so the output is stable.
const schemaRoot = '../schemas';
const schemaFiles = ['defs.v1.json', 'event.v1.json',
  ...readdirSync(join(schemaRoot, 'body')).filter((f) => f.endsWith('.json')).sort().map((f) => `body/${f}`)];
const schemas = Object.fromEntries(schemaFiles.map((f) => [f, JSON.parse(readFileSync(join(schemaRoot, f), 'utf8'))]));
writeFileSync('src/core/schemas.json', `${JSON.stringify(schemas)}\n`);

const out = 'dist';
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const common = {
  bundle: true, minify: true, format: 'esm', target: ['es2020'], platform: 'browser', legalComments: 'none',
  charset: 'utf8', sourcemap: false, logLevel: 'warning',
};
await build({ ...common, entryPoints: ['src/main.js'], outfile: join(out, 'app.js'), metafile: false });
await build({ ...common, entryPoints: ['src/worker.js'], outfile: join(out, 'worker.js') });
copyFileSync('src/index.html', join(out, 'index.html'));
copyFileSync('src/style.css', join(out, 'style.css'));

for (const file of readdirSync(out).sort()) {
  if (file.endsWith('.gz')) continue;
  const data = readFileSync(join(out, file));
  writeFileSync(join(out, `${file}.gz`), gzipSync(data, { level: constants.Z_BEST_COMPRESSION }));
}
const sizes = readdirSync(out).sort().map((f) => `${f} ${readFileSync(join(out, f)).length}`);
console.log(sizes.join('\n'));
