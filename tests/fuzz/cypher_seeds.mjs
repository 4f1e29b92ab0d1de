// Writes seed inputs for fuzz_cypher and fuzz_query from the openCypher
// TCK's queries (tests/tck/features; called by make_corpus.sh), and
// generator inputs for fuzz_query_exec:
//   node tests/fuzz/cypher_seeds.mjs CORPUS_DIR
// fuzz_cypher gets every 4th query whose scenario expects an error (the
// parser's and the semantic checks' hard cases) and every 40th other one;
// fuzz_query every 30th other query; fuzz_query_exec a few streams of
// choices.
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, relative, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFeature, compileSteps } from '../tck/tck.mjs';

const features = join(dirname(fileURLToPath(import.meta.url)), '..', 'tck', 'features');
const out = process.argv[2];
if (!out) { console.error('usage: cypher_seeds.mjs CORPUS_DIR'); process.exit(2); }
const walk = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) =>
  e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.feature') ? [join(d, e.name)] : []).sort();
const failing = new Set(), other = new Set();
for (const f of walk(features)) {
  for (const sc of parseFeature(readFileSync(f, 'utf8'), relative(features, f)).scenarios) {
    const actions = compileSteps(sc, new Map([['binary-tree-1', ''], ['binary-tree-2', '']]));
    const expectsError = actions.some((a) => a.op === 'error');
    for (const a of actions) if (a.op === 'exec' && a.query) (expectsError && a.kind === 'query' ? failing : other).add(a.query);
  }
}
const every = (set, n, k = 0) => [...set].filter((_, i) => i % n === k);
const write = (dir, items) => {
  mkdirSync(join(out, dir), { recursive: true });
  items.forEach((q, i) => writeFileSync(join(out, dir, `tck-${String(i).padStart(4, '0')}`), q));
  console.log(`${dir}: ${items.length} seeds`);
};
write('cypher', [...every(failing, 4), ...every(other, 40)]);
write('query', every(other, 30, 3));
mkdirSync(join(out, 'query_exec'), { recursive: true });
const gen = [[0], [1, 2, 3, 4, 5, 6, 7], [9, 0, 4, 2, 200, 16, 5, 3], [255, 254, 253, 7, 7, 7, 7, 7, 7, 7, 7],
  [3, 6, 1, 6, 9, 14, 12, 2, 11, 5, 10, 8, 13, 4, 0, 1], [...'choices from text: MATCH (a)-[r]->(b) RETURN a'].map((c) => c.charCodeAt(0))];
gen.forEach((b, i) => writeFileSync(join(out, 'query_exec', `gen-${i}`), Buffer.from(b)));
