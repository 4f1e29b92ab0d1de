#!/usr/bin/env node
// Runs the openCypher TCK (tests/tck/features, Apache-2.0, see LICENSE and
// NOTICE here) against shiplog and prints passed/failed/skipped by feature
// directory, the pass rate over the directories spec/query.md covers, and the
// most frequent causes of failure.
//
// tck.mjs holds the TCK's semantics (Gherkin, steps, values, side effects);
// backends/*.mjs run queries: `cli` drives the shiplog binary, `bolt`
// `shiplog serve` through Neo4j's JavaScript driver; each exports a
// make*Backend function of the same {name, newGraph()} shape.
//
// skip.txt names the scenarios not run, one reason each ("KEY :: reason");
// skip-bolt.txt, in the same form, those the bolt backend does not run
// besides. passing.txt the scenarios that passed through the cli backend
// when it was last written: one of them failing (through either backend)
// fails the run (exit 1); --update rewrites it from a cli run.
// A scenario's KEY is "DIR/FILE.feature:[N] name", with " #I" for the I-th
// row of a Scenario Outline's Examples.

import { readFile, writeFile, readdir, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { parseFeature, compileSteps, runScenario, canon, show } from './tck.mjs';
import { parseJson, toValue, fromValue } from './backends/cli.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));

// The feature directories of spec/query.md's clauses and functions: the
// pass rate that issue #19 asks 90% of is taken over these.
const IN_SCOPE = new Set([
  'clauses/call', 'clauses/create', 'clauses/delete', 'clauses/match', 'clauses/match-where', 'clauses/merge',
  'clauses/remove', 'clauses/return', 'clauses/return-orderby', 'clauses/return-skip-limit', 'clauses/set',
  'clauses/union', 'clauses/unwind', 'clauses/with', 'clauses/with-orderBy', 'clauses/with-skip-limit',
  'clauses/with-where',
  'expressions/aggregation', 'expressions/boolean', 'expressions/comparison', 'expressions/conditional',
  'expressions/graph', 'expressions/list', 'expressions/literals', 'expressions/map', 'expressions/mathematical',
  'expressions/null', 'expressions/path', 'expressions/precedence', 'expressions/string', 'expressions/temporal',
  'expressions/typeConversion',
]);

const USAGE = `usage: node tests/tck/run.mjs [options]
  --bin PATH         the shiplog binary (default $SL_BIN, else build/shiplog)
  --backend NAME     cli (default) or bolt (needs neo4j-driver on NODE_PATH)
  --filter REGEX     run only the scenarios whose key matches
  --jobs N           scenarios run at once (default 2)
  --timeout-ms N     per query (default 30000)
  --tmp DIR          where the scenarios' stores go (default $SL_TEST_TMP or the system's)
  --parse-only       parse every feature, scenario, step and value, check that every
                     expected value reads back from the engine's JSON; print the counts
  --run-skipped      run the scenarios of skip.txt too (to see which pass now)
  --update           rewrite passing.txt from this run (cli backend only)
  --verbose          print each failure's detail
  --failures FILE    write each failure's detail to FILE
  --features DIR     default tests/tck/features`;

function usage(msg) {
  if (msg) console.error(`run.mjs: ${msg}`);
  console.error(USAGE);
  process.exit(2);
}

function parseArgs(argv) {
  const o = { backend: 'cli', jobs: 2, timeoutMs: 30000, features: join(HERE, 'features'), filter: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    switch (a) {
      case '--bin': o.bin = val(); break;
      case '--backend': o.backend = val(); break;
      case '--filter': o.filter = new RegExp(val()); break;
      case '--jobs': o.jobs = Number(val()); if (!(o.jobs >= 1)) usage('--jobs needs a positive number'); break;
      case '--timeout-ms': o.timeoutMs = Number(val()); break;
      case '--tmp': o.tmp = val(); break;
      case '--features': o.features = val(); break;
      case '--failures': o.failures = val(); break;
      case '--parse-only': o.parseOnly = true; break;
      case '--run-skipped': o.runSkipped = true; break;
      case '--update': o.update = true; break;
      case '--verbose': case '-v': o.verbose = true; break;
      case '--help': case '-h': console.log(USAGE); process.exit(0); break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (o.update && o.backend !== 'cli') usage('--update writes passing.txt from the cli backend only');
  return o;
}

async function featureFiles(dir) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await featureFiles(p)));
    else if (e.name.endsWith('.feature')) out.push(p);
  }
  return out.sort();
}

async function namedGraphs() {
  const g = new Map();
  const dir = join(HERE, 'graphs');
  for (const e of await readdir(dir, { withFileTypes: true }))
    if (e.isDirectory()) g.set(e.name, await readFile(join(dir, e.name, `${e.name}.cypher`), 'utf8'));
  return g;
}

// "KEY :: reason" lines; # comments and blank lines skipped.
async function readSkips(file) {
  const m = new Map();
  if (!existsSync(file)) return m;
  const lines = (await readFile(file, 'utf8')).split('\n');
  lines.forEach((l, i) => {
    if (!l.trim() || l.startsWith('#')) return;
    const at = l.lastIndexOf(' :: ');
    if (at < 0 || !l.slice(at + 4).trim()) throw new Error(`${file}:${i + 1}: expected "KEY :: reason"`);
    m.set(l.slice(0, at).trim(), l.slice(at + 4).trim());
  });
  return m;
}

async function readList(file) {
  if (!existsSync(file)) return new Set();
  return new Set((await readFile(file, 'utf8')).split('\n').filter((l) => l && !l.startsWith('#')));
}

// --backend NAME: its module, its constructor, its own skip list (beside skip.txt)
const BACKENDS = new Map([
  ['cli', { file: 'cli.mjs', make: 'makeCliBackend', skips: null }],
  ['bolt', { file: 'bolt.mjs', make: 'makeBoltBackend', skips: 'skip-bolt.txt' }],
]);

const dirOf = (key) => key.slice(0, key.lastIndexOf('/', key.indexOf('.feature:')));

async function loadBackend(o) {
  if (!BACKENDS.has(o.backend)) usage(`unknown backend ${o.backend} (${[...BACKENDS.keys()].join(', ')})`);
  const bin = o.bin || process.env.SL_BIN || join(HERE, '..', '..', 'build', 'shiplog');
  if (!existsSync(bin)) usage(`${bin}: no shiplog binary (--bin or $SL_BIN)`);
  const tmp = o.tmp || process.env.SL_TEST_TMP || tmpdir();
  await mkdir(tmp, { recursive: true });
  const { file, make } = BACKENDS.get(o.backend);
  return (await import(`./backends/${file}`))[make]({ bin, tmp, timeoutMs: o.timeoutMs });
}

function pct(a, b) { return b ? `${((100 * a) / b).toFixed(1)}%` : '-'; }

function printTable(byDir) {
  const rows = [...byDir.entries()].sort(([a], [b]) => a.localeCompare(b));
  const w = Math.max(...rows.map(([d]) => d.length), 'spec/query.md directories'.length) + 2;
  const line = (d, c, note = '') =>
    `${d.padEnd(w)}${String(c.pass).padStart(7)}${String(c.fail).padStart(7)}${String(c.skip).padStart(8)}${String(c.pass + c.fail + c.skip).padStart(7)}${pct(c.pass, c.pass + c.fail + c.skip).padStart(8)}${note}`;
  console.log(`${'directory'.padEnd(w)}${'passed'.padStart(7)}${'failed'.padStart(7)}${'skipped'.padStart(8)}${'total'.padStart(7)}${'pass'.padStart(8)}`);
  const sum = (f) => rows.filter(([d]) => f(d)).reduce((s, [, c]) => ({ pass: s.pass + c.pass, fail: s.fail + c.fail, skip: s.skip + c.skip }), { pass: 0, fail: 0, skip: 0 });
  for (const [d, c] of rows) console.log(line(d, c, IN_SCOPE.has(d) ? '' : '   (outside spec/query.md)'));
  const inScope = sum((d) => IN_SCOPE.has(d));
  const all = sum(() => true);
  console.log(line('spec/query.md directories', inScope));
  console.log(line('all', all));
  return inScope;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const graphs = await namedGraphs();
  const scenarios = [];
  let parseErrors = 0;
  for (const f of await featureFiles(o.features)) {
    const rel = relative(o.features, f);
    try {
      const feat = parseFeature(await readFile(f, 'utf8'), rel);
      for (const sc of feat.scenarios) {
        sc.actions = compileSteps(sc, graphs);
        scenarios.push(sc);
      }
    } catch (e) {
      parseErrors++;
      console.error(`parse error: ${e.message}`);
    }
  }
  const keys = new Set();
  for (const sc of scenarios) {
    if (keys.has(sc.key)) { parseErrors++; console.error(`parse error: two scenarios named ${sc.key}`); }
    keys.add(sc.key);
  }
  const skipFile = join(HERE, 'skip.txt');
  const passFile = join(HERE, 'passing.txt');
  const skips = await readSkips(skipFile);
  for (const k of skips.keys()) if (!keys.has(k)) console.error(`skip.txt: no scenario ${k}`);
  const ownSkips = BACKENDS.get(o.backend)?.skips;
  if (ownSkips) {
    for (const [k, why] of await readSkips(join(HERE, ownSkips))) {
      if (!keys.has(k)) console.error(`${ownSkips}: no scenario ${k}`);
      if (skips.has(k)) console.error(`${ownSkips}: ${k} is in skip.txt already`);
      skips.set(k, why);
    }
  }

  if (o.parseOnly) {
    const byDir = new Map();
    const count = { scenarios: 0, queries: 0, values: 0, errors: 0 };
    for (const sc of scenarios) {
      const d = dirOf(sc.key);
      byDir.set(d, (byDir.get(d) || 0) + 1);
      count.scenarios++;
      for (const a of sc.actions) {
        if (a.op === 'exec') count.queries++;
        if (a.op === 'error') count.errors++;
        if (a.op === 'params') count.values += a.params.size;
        if (a.op === 'result' && a.expected) {
          for (const v of a.expected.rows.flat()) {
            count.values++;
            // the cli backend's reading of what the engine prints, checked on every expected value
            const back = toValue(parseJson(fromValue(v)));
            if (canon(back) !== canon(v)) { parseErrors++; console.error(`${sc.key}: ${show(v)} reads back as ${show(back)}`); }
          }
        }
      }
    }
    for (const [d, n] of [...byDir].sort()) console.log(`${d.padEnd(34)}${String(n).padStart(5)} scenarios${IN_SCOPE.has(d) ? '' : '   (outside spec/query.md)'}`);
    console.log(`${count.scenarios} scenarios, ${count.queries} queries, ${count.values} expected values and parameters, ${count.errors} expected errors; ${skips.size} in skip.txt; ${parseErrors} parse errors`);
    process.exit(parseErrors ? 1 : 0);
  }

  const backend = await loadBackend(o);
  const passing = await readList(passFile);
  const chosen = scenarios.filter((sc) => !o.filter || o.filter.test(sc.key));
  const results = new Map();
  let next = 0, done = 0;
  const t0 = Date.now();
  async function worker() {
    while (next < chosen.length) {
      const sc = chosen[next++];
      let r;
      if (skips.has(sc.key) && !o.runSkipped) r = { skip: true };
      else {
        try {
          r = await runScenario(backend, sc, sc.actions);
        } catch (e) {
          r = { ok: false, why: `runner: ${e.message}`, cause: `runner: ${e.message.split('\n')[0].slice(0, 80)}` };
        }
      }
      results.set(sc.key, r);
      if (process.stderr.isTTY && ++done % 20 === 0) process.stderr.write(`\r${done}/${chosen.length}`);
    }
  }
  await Promise.all(Array.from({ length: o.jobs }, worker));
  if (process.stderr.isTTY) process.stderr.write('\r');

  const byDir = new Map();
  const causes = new Map();
  const byFeature = new Map();
  const regressions = [], nowPassingSkipped = [], details = [];
  for (const sc of chosen) {
    const r = results.get(sc.key);
    const d = dirOf(sc.key);
    const c = byDir.get(d) || { pass: 0, fail: 0, skip: 0 };
    byDir.set(d, c);
    if (r.skip || (skips.has(sc.key) && !r.ok)) c.skip++;
    else if (r.ok) c.pass++;
    else c.fail++;
    if (r.ok && skips.has(sc.key)) nowPassingSkipped.push(sc.key);
    if (!r.ok && !r.skip) {
      if (!skips.has(sc.key)) {
        causes.set(r.cause, (causes.get(r.cause) || 0) + 1);
        byFeature.set(sc.file, (byFeature.get(sc.file) || 0) + 1);
      }
      if (passing.has(sc.key)) regressions.push(sc.key);
      details.push(`--- ${sc.key}\n${r.why}\n`);
      if (o.verbose) console.log(`FAIL ${sc.key}\n${r.why}\n`);
    }
  }
  printTable(byDir);
  console.log(`(${backend.name} backend, ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  if (causes.size) {
    console.log('\nfailure causes (scenarios):');
    for (const [c, n] of [...causes].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${String(n).padStart(5)}  ${c}`);
    console.log('\nfeatures with the most failures:');
    for (const [f, n] of [...byFeature].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${String(n).padStart(5)}  ${f}`);
  }
  if (o.failures) await writeFile(o.failures, details.join('\n'));
  if (nowPassingSkipped.length) console.log(`\n${nowPassingSkipped.length} scenario(s) of skip.txt pass now: ${nowPassingSkipped.slice(0, 10).join('; ')}`);
  if (o.update) {
    const kept = [...passing].filter((k) => !chosen.some((sc) => sc.key === k));
    const now = chosen.filter((sc) => results.get(sc.key).ok && !skips.has(sc.key)).map((sc) => sc.key);
    const all = [...new Set([...kept, ...now])].filter((k) => keys.has(k)).sort();
    await writeFile(passFile, `# scenarios of the openCypher TCK that pass (tests/tck/run.mjs --update writes this)\n${all.join('\n')}\n`);
    console.log(`passing.txt: ${all.length} scenarios`);
  }
  if (parseErrors) console.log(`${parseErrors} feature file(s) could not be read`);
  if (regressions.length) {
    console.log(`\n${regressions.length} scenario(s) of passing.txt fail now:`);
    for (const k of regressions) console.log(`  ${k}`);
  }
  process.exit(parseErrors || (regressions.length && !o.update) ? 1 : 0);
}

main().catch((e) => { console.error(`run.mjs: ${e.stack || e.message}`); process.exit(1); });
