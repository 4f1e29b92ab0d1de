// The openCypher TCK's semantics, without a backend: the Gherkin subset its
// feature files use, the steps of tools/tck-api (openCypher's reference
// harness, removed from the repository in e3726caa; its Scala code is what
// this follows), its value literals and their comparison, and its side-effect
// measure.
//
// A scenario becomes a list of steps exactly as tck-api builds them:
// "executing query" measures the graph before it runs, an expected error is
// followed by "no side effects" when the scenario says nothing else, @ignore
// scenarios are dropped, Background steps come first, and each row of a
// Scenario Outline's Examples is a scenario of its own (#N: its 1-based row).
//
// Values are plain objects {k: kind, ...}; equal values have equal canon()
// strings, which is how rows are compared (in order, or as multisets).
// Lists compare in order unless the step says "ignoring element order for
// lists" (then every list, nested ones too, compares as a sorted multiset).

// ---- Gherkin ---------------------------------------------------------------

const STEP_RE = /^(Given|When|Then|And|But|\*) (.*)$/;

function unescapeCell(s) {
  return s.replace(/\\([|\\n])/g, (_, c) => (c === 'n' ? '\n' : c));
}

function splitRow(line, where) {
  const t = line.trim();
  if (t === '|') return []; // a table of no columns (a procedure that yields nothing)
  if (!t.startsWith('|') || !t.endsWith('|') || t.length < 2)
    throw new Error(`${where}: malformed table row: ${t}`);
  const cells = [];
  let cur = '';
  for (let i = 1; i < t.length; i++) {
    const c = t[i];
    if (c === '\\' && i + 1 < t.length) { cur += c + t[i + 1]; i++; continue; }
    if (c === '|') { cells.push(unescapeCell(cur.trim())); cur = ''; continue; }
    cur += c;
  }
  return cells;
}

// Parses one .feature file into {name, scenarios}; throws "FILE:LINE: why".
export function parseFeature(text, file) {
  const lines = text.split(/\r?\n/);
  let feature = null;
  let featureTags = [];
  let pendingTags = [];
  let background = null;
  const blocks = []; // {kind, name, line, tags, steps, examples:[{tags, header, rows, line}]}
  let cur = null; // current background or scenario block
  let lastStep = null;
  let curExamples = null;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    const t = raw.trim();
    const where = `${file}:${i + 1}`;
    if (t === '' || t.startsWith('#')) continue;
    if (t.startsWith('"""') || t.startsWith('```')) {
      if (!lastStep) throw new Error(`${where}: doc string outside a step`);
      const delim = t.slice(0, 3);
      const indent = raw.indexOf(delim);
      const body = [];
      for (i++; i < lines.length && lines[i].trim() !== delim; i++) {
        let l = lines[i];
        let strip = 0;
        while (strip < indent && (l[strip] === ' ' || l[strip] === '\t')) strip++;
        body.push(l.slice(strip).replaceAll('\\"\\"\\"', '"""'));
      }
      if (i >= lines.length) throw new Error(`${where}: doc string not closed`);
      lastStep.doc = body.join('\n');
      continue;
    }
    if (t.startsWith('|')) {
      const cells = splitRow(t, where);
      if (curExamples) {
        if (!curExamples.header) curExamples.header = cells;
        else {
          if (cells.length !== curExamples.header.length)
            throw new Error(`${where}: ${cells.length} cells, the Examples header has ${curExamples.header.length}`);
          curExamples.rows.push({ cells, line: i + 1 });
        }
      } else if (lastStep) {
        (lastStep.table ??= []).push(cells);
        if (cells.length !== lastStep.table[0].length)
          throw new Error(`${where}: ${cells.length} cells, the table's first row has ${lastStep.table[0].length}`);
      } else throw new Error(`${where}: table outside a step`);
      continue;
    }
    if (t.startsWith('@')) {
      pendingTags.push(...t.split(/\s+/).filter((x) => x.startsWith('@')));
      continue;
    }
    const kw = /^(Feature|Background|Scenario Outline|Scenario Template|Scenario|Example|Examples|Scenarios):\s*(.*)$/.exec(t);
    if (kw) {
      const [, k, name] = kw;
      if (k === 'Feature') {
        feature = name; featureTags = pendingTags; pendingTags = [];
        cur = null; lastStep = null; curExamples = null;
      } else if (k === 'Background') {
        background = cur = { steps: [] }; lastStep = null; curExamples = null;
      } else if (k === 'Examples' || k === 'Scenarios') {
        if (!cur || !cur.outline) throw new Error(`${where}: Examples outside a Scenario Outline`);
        curExamples = { tags: pendingTags, header: null, rows: [], line: i + 1 };
        pendingTags = [];
        cur.examples.push(curExamples);
        lastStep = null;
      } else {
        cur = { name, line: i + 1, tags: pendingTags, steps: [], outline: k.startsWith('Scenario O') || k.startsWith('Scenario T'), examples: [] };
        pendingTags = []; lastStep = null; curExamples = null;
        blocks.push(cur);
      }
      continue;
    }
    const st = STEP_RE.exec(t);
    if (st) {
      if (!cur || curExamples) throw new Error(`${where}: step outside a scenario: ${t}`);
      lastStep = { kw: st[1], text: st[2].trim(), line: i + 1 };
      cur.steps.push(lastStep);
      continue;
    }
    if (feature !== null && !cur) continue; // the feature's free-text description
    throw new Error(`${where}: cannot read: ${t}`);
  }
  if (feature === null) throw new Error(`${file}: no Feature:`);

  const scenarios = [];
  const bgSteps = background ? background.steps : [];
  for (const b of blocks) {
    const tags = [...featureTags, ...b.tags];
    const m = /^\[(\d+)\] (.*)$/.exec(b.name);
    const number = m ? Number(m[1]) : null;
    if (!b.outline) {
      scenarios.push({ file, feature, name: b.name, number, line: b.line, tags, exampleIndex: null,
        exampleName: null, key: `${file}:${b.name}`, steps: [...bgSteps, ...b.steps] });
      continue;
    }
    let idx = 0;
    for (const ex of b.examples) {
      if (!ex.header) throw new Error(`${file}:${ex.line}: Examples without a table`);
      for (const row of ex.rows) {
        idx++;
        const vars = new Map(ex.header.map((h, j) => [h, row.cells[j]]));
        const sub = (s) => s.replace(/<([^<>\s][^<>]*)>/g, (all, n) => (vars.has(n) ? vars.get(n) : all));
        const steps = b.steps.map((s) => ({
          kw: s.kw, text: sub(s.text), line: s.line,
          doc: s.doc === undefined ? undefined : sub(s.doc),
          table: s.table && s.table.map((r) => r.map(sub)),
        }));
        const exampleName = vars.get('exampleName') ?? null;
        scenarios.push({ file, feature, name: b.name, number, line: row.line, tags: [...tags, ...ex.tags],
          exampleIndex: idx, exampleName, key: `${file}:${b.name} #${idx}`, steps: [...bgSteps, ...steps] });
      }
    }
  }
  return { name: feature, scenarios: scenarios.filter((s) => !s.tags.includes('@ignore')) };
}

// ---- values ----------------------------------------------------------------

export const V = {
  null: { k: 'null' },
  nan: { k: 'nan' },
  bool: (v) => ({ k: 'bool', v }),
  int: (v) => ({ k: 'int', v: BigInt(v) }),
  float: (v) => (Number.isNaN(v) ? V.nan : { k: 'float', v }),
  str: (v) => ({ k: 'string', v }),
  list: (items) => ({ k: 'list', items }),
  map: (m) => ({ k: 'map', m }),
  node: (labels, props) => ({ k: 'node', labels: [...new Set(labels)].sort(), props }),
  rel: (type, props) => ({ k: 'rel', type, props }),
  path: (start, links) => ({ k: 'path', start, links }),
};

// The TCK's literal syntax (tck-api's CypherValueParser): nodes (:L {p: 1}),
// relationships [:T {..}], paths <(:A)-[:T]->(:B)>, lists, maps, strings in
// single quotes (\' and \\ escaped), integers, floats, true/false, null, NaN.
export function parseValue(src) {
  let i = 0;
  const ws = () => { while (i < src.length && ' \t\n\r\f'.includes(src[i])) i++; };
  const fail = (why) => { throw new Error(`value ${JSON.stringify(src)} at ${i}: ${why}`); };
  const eat = (s) => { ws(); if (src.startsWith(s, i)) { i += s.length; return true; } return false; };
  const need = (s) => { if (!eat(s)) fail(`expected ${s}`); };
  const name = () => {
    const m = /^[A-Za-z0-9$_]+/.exec(src.slice(i));
    if (!m) fail('expected a name');
    i += m[0].length;
    return m[0];
  };
  const map = () => {
    need('{');
    const m = new Map();
    if (eat('}')) return m;
    do { ws(); const k = name(); need(':'); m.set(k, value()); } while (eat(','));
    need('}');
    return m;
  };
  const node = () => {
    need('(');
    const labels = [];
    while (eat(':')) labels.push(name());
    ws();
    const props = src[i] === '{' ? map() : new Map();
    need(')');
    return V.node(labels, props);
  };
  const rel = () => {
    need('[');
    need(':');
    const type = name();
    ws();
    const props = src[i] === '{' ? map() : new Map();
    need(']');
    return V.rel(type, props);
  };
  function value() {
    ws();
    const c = src[i];
    if (c === '(') return node();
    if (c === '<') {
      i++;
      const start = node();
      const links = [];
      for (;;) {
        ws();
        if (src.startsWith('-[', i)) { i++; const r = rel(); need('->'); links.push({ dir: '>', rel: r, node: node() }); }
        else if (src.startsWith('<-[', i)) { i += 2; const r = rel(); need('-'); links.push({ dir: '<', rel: r, node: node() }); }
        else break;
      }
      need('>');
      return V.path(start, links);
    }
    if (c === '[') {
      if (/^\[\s*:/.test(src.slice(i))) return rel();
      i++;
      const items = [];
      if (eat(']')) return V.list(items);
      do items.push(value()); while (eat(','));
      need(']');
      return V.list(items);
    }
    if (c === '{') return V.map(map());
    if (c === "'") {
      let s = '';
      for (i++; ; i++) {
        if (i >= src.length) fail('string not closed');
        if (src[i] === '\\' && (src[i + 1] === "'" || src[i + 1] === '\\')) { s += src[++i]; continue; }
        if (src[i] === "'") { i++; break; }
        s += src[i];
      }
      return V.str(s);
    }
    const num = /^-?(\d+\.\d+([eE]-?\d+)?|\.\d+([eE]-?\d+)?|\d+[eE]-?\d+|\d+)/.exec(src.slice(i));
    if (num) {
      i += num[0].length;
      return /[.eE]/.test(num[0]) ? V.float(Number(num[0])) : V.int(num[0]);
    }
    for (const [w, v] of [['true', V.bool(true)], ['false', V.bool(false)], ['null', V.null], ['NaN', V.nan]])
      if (src.startsWith(w, i)) { i += w.length; return v; }
    fail('expected a value');
  }
  const v = value();
  ws();
  if (i !== src.length) fail('trailing characters');
  return v;
}

const mapCanon = (m, u) => `{${[...m.keys()].sort().map((k) => `${JSON.stringify(k)}:${canon(m.get(k), u)}`).join(',')}}`;

// A string equal for equal values; unorderedLists compares lists as sorted multisets.
export function canon(v, unorderedLists = false) {
  switch (v.k) {
    case 'null': return 'null';
    case 'nan': return 'NaN';
    case 'bool': return String(v.v);
    case 'int': return `${v.v}`;
    case 'float': return `F${String(v.v)}`;
    case 'string': return JSON.stringify(v.v);
    case 'list': {
      const items = v.items.map((x) => canon(x, unorderedLists));
      if (unorderedLists) items.sort();
      return `[${items.join(',')}]`;
    }
    case 'map': return mapCanon(v.m, unorderedLists);
    case 'node': return `(${v.labels.map((l) => ':' + l).join('')}${mapCanon(v.props, unorderedLists)})`;
    case 'rel': return `[:${v.type}${mapCanon(v.props, unorderedLists)}]`;
    case 'path': return `<${canon(v.start, unorderedLists)}${v.links.map((l) =>
      (l.dir === '>' ? `-${canon(l.rel, unorderedLists)}->` : `<-${canon(l.rel, unorderedLists)}-`) + canon(l.node, unorderedLists)).join('')}>`;
    default: throw new Error(`unknown value kind ${v.k}`);
  }
}

// The TCK's own notation, for failure messages.
export function show(v) {
  const props = (m) => `{${[...m.keys()].sort().map((k) => `${k}: ${show(m.get(k))}`).join(', ')}}`;
  switch (v.k) {
    case 'null': return 'null';
    case 'nan': return 'NaN';
    case 'bool': return String(v.v);
    case 'int': return `${v.v}`;
    case 'float': { const s = String(v.v); return /[.eEIN]/.test(s) ? s : s + '.0'; }
    case 'string': return `'${v.v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
    case 'list': return `[${v.items.map(show).join(', ')}]`;
    case 'map': return props(v.m);
    case 'node': return `(${[v.labels.map((l) => ':' + l).join(''), v.props.size ? props(v.props) : ''].filter(Boolean).join(' ')})`;
    case 'rel': return `[:${v.type}${v.props.size ? ' ' + props(v.props) : ''}]`;
    case 'path': return `<${show(v.start)}${v.links.map((l) => (l.dir === '>' ? `-${show(l.rel)}->` : `<-${show(l.rel)}-`) + show(l.node)).join('')}>`;
    default: return `?${v.k}`;
  }
}

// A parameter value as JSON for a backend (spec/export.md's value notation).
export function toJson(v) {
  switch (v.k) {
    case 'null': return 'null';
    case 'nan': return '{"$double":"NaN"}';
    case 'bool': return String(v.v);
    case 'int': return `${v.v}`;
    case 'float': {
      if (!Number.isFinite(v.v)) return `{"$double":"${v.v > 0 ? 'Infinity' : '-Infinity'}"}`;
      const s = Object.is(v.v, -0) ? '-0' : String(v.v);
      return /[.e]/.test(s) ? s : s + '.0';
    }
    case 'string': return JSON.stringify(v.v);
    case 'list': return `[${v.items.map(toJson).join(',')}]`;
    case 'map': return `{${[...v.m].map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(',')}}`;
    default: throw new Error(`a ${v.k} cannot be a parameter`);
  }
}

// ---- steps -----------------------------------------------------------------

const SIDE_EFFECTS = ['+nodes', '-nodes', '+relationships', '-relationships', '+labels', '-labels', '+properties', '-properties'];
export const ERROR_TYPES = new Set(['SyntaxError', 'SemanticError', 'ParameterMissing', 'ConstraintVerificationFailed',
  'ConstraintValidationFailed', 'EntityNotFound', 'PropertyNotFound', 'LabelNotFound', 'TypeError', 'ArgumentError',
  'ArithmeticError', 'ProcedureError', 'Error']);

function table(step, where) {
  if (!step.table || step.table.length === 0) throw new Error(`${where}: the step needs a table`);
  return step.table;
}

function resultTable(step, where, unorderedLists) {
  const [header, ...rows] = table(step, where);
  return { header, rows: rows.map((r) => r.map((cell) => parseValue(cell))), unorderedLists };
}

// The scenario's steps as tck-api's actions; throws "FILE:LINE: why" for a
// step it does not know.
export function compileSteps(sc, namedGraphs) {
  const out = [];
  for (const s of sc.steps) {
    const where = `${sc.file}:${s.line}`;
    const t = s.text;
    let m;
    if (t === 'an empty graph' || t === 'any graph') out.push({ op: 'noop' });
    else if ((m = /^the (.*) graph$/.exec(t))) {
      if (!namedGraphs.has(m[1])) throw new Error(`${where}: unknown named graph ${m[1]}`);
      out.push({ op: 'exec', kind: 'init', query: namedGraphs.get(m[1]) });
    } else if (t === 'having executed:') out.push({ op: 'exec', kind: 'init', query: need(s.doc, where) });
    else if (t === 'parameters are:') {
      const ps = new Map();
      for (const row of table(s, where)) {
        if (row.length !== 2) throw new Error(`${where}: a parameter row has two cells`);
        ps.set(row[0], parseValue(row[1]));
      }
      out.push({ op: 'params', params: ps });
    } else if ((m = /^there exists a procedure (.+):$/.exec(t))) out.push({ op: 'procedure', signature: m[1], table: table(s, where) });
    else if ((m = /^there exists a CSV file with URL as \$(.*), with rows:$/.exec(t))) out.push({ op: 'csv', param: m[1], table: table(s, where) });
    else if (t === 'executing query:') out.push({ op: 'measure' }, { op: 'exec', kind: 'query', query: need(s.doc, where) });
    else if (t === 'executing control query:') out.push({ op: 'exec', kind: 'control', query: need(s.doc, where) });
    else if (t === 'the result should be empty') out.push({ op: 'result', empty: true, sorted: false });
    else if ((m = /^the result should be(, in (any order|order))?( \(ignoring element order for lists\))?:$/.exec(t)))
      out.push({ op: 'result', sorted: m[2] === 'order', expected: resultTable(s, where, !!m[3]) });
    else if ((m = /^an? (.+) should be raised at (.+): (.+)$/.exec(t))) {
      if (!ERROR_TYPES.has(m[1])) throw new Error(`${where}: unknown error type ${m[1]}`);
      if (!['compile time', 'runtime', 'any time'].includes(m[2])) throw new Error(`${where}: unknown error phase ${m[2]}`);
      out.push({ op: 'error', type: m[1], phase: m[2], detail: m[3] });
    } else if (t === 'no side effects') out.push({ op: 'effects', expected: zeroEffects() });
    else if (t === 'the side effects should be:') {
      const e = zeroEffects();
      for (const row of table(s, where)) {
        if (row.length !== 2 || !SIDE_EFFECTS.includes(row[0]) || !/^\d+$/.test(row[1]))
          throw new Error(`${where}: bad side effect row ${row.join(' | ')}`);
        e[row[0]] = Number(row[1]);
      }
      out.push({ op: 'effects', expected: e });
    } else throw new Error(`${where}: unsupported step: ${t}`);
  }
  // tck-api: an expected error not followed by side effects expects none
  const at = out.findIndex((x) => x.op === 'error');
  if (at >= 0 && out[at + 1]?.op !== 'effects') out.splice(at + 1, 0, { op: 'effects', expected: zeroEffects() });
  return out;
}

function need(doc, where) {
  if (doc === undefined) throw new Error(`${where}: the step needs a doc string`);
  return doc;
}

const zeroEffects = () => Object.fromEntries(SIDE_EFFECTS.map((k) => [k, 0]));

// tck-api's State.diff: node and relationship ids and label names as sets,
// (owner id, key, value) property triples as multisets.
export function diffStates(before, after) {
  const setMinus = (a, b) => [...a].filter((x) => !b.has(x)).length;
  const multiMinus = (a, b) => {
    const count = new Map();
    for (const x of b) count.set(x, (count.get(x) || 0) + 1);
    let n = 0;
    for (const x of a) { const c = count.get(x) || 0; if (c > 0) count.set(x, c - 1); else n++; }
    return n;
  };
  return {
    '+nodes': setMinus(after.nodes, before.nodes), '-nodes': setMinus(before.nodes, after.nodes),
    '+relationships': setMinus(after.rels, before.rels), '-relationships': setMinus(before.rels, after.rels),
    '+labels': setMinus(after.labels, before.labels), '-labels': setMinus(before.labels, after.labels),
    '+properties': multiMinus(after.props, before.props), '-properties': multiMinus(before.props, after.props),
  };
}

export const EMPTY_STATE = { nodes: new Set(), rels: new Set(), labels: new Set(), props: [] };

// Neo4j reports what its semantic analysis finds (the TCK's compile-time
// SyntaxError, SemanticError and TypeError, and a TypeError it can already
// see before running) as Neo.ClientError.Statement.SyntaxError, so those
// stand for each other there; otherwise the status code's last part must be
// the TCK's type, but for the names Neo4j gives two of them
// (Schema.ConstraintValidationFailed for a node deleted with its
// relationships, Procedure.* for a procedure error). The phase and the
// detail code are not in Neo4j's status codes and are not compared.
export function errorMatches(exp, got) {
  if (exp.type === 'Error' || got.type === exp.type) return true;
  const analysis = ['SyntaxError', 'SemanticError', 'TypeError'];
  if ((exp.phase !== 'runtime' || exp.type === 'TypeError') && analysis.includes(exp.type) && analysis.includes(got.type)) return true;
  if (exp.type === 'ConstraintVerificationFailed' && got.type === 'ConstraintValidationFailed') return true;
  if (exp.type === 'ProcedureError' && got.code.startsWith('Neo.ClientError.Procedure.')) return true;
  return false;
}

function showRows(header, rows) {
  return [`| ${header.join(' | ')} |`, ...rows.map((r) => `| ${r.map(show).join(' | ')} |`)].join('\n');
}

// Runs one scenario on a fresh graph from backend.newGraph(); returns
// {ok: true} or {ok: false, why, cause} (cause: a short grouping string).
export async function runScenario(backend, sc, actions) {
  const g = await backend.newGraph();
  try {
    let params = new Map();
    let last = { rows: [], columns: [] };
    let state = EMPTY_STATE;
    for (const a of actions) {
      switch (a.op) {
        case 'noop': break;
        case 'params': params = new Map([...params, ...a.params]); break;
        case 'procedure':
          if (!g.registerProcedure) return fail(`the ${backend.name} backend cannot register test procedures`, 'needs a registered test procedure');
          await g.registerProcedure(a.signature, a.table);
          break;
        case 'csv':
          return fail(`the ${backend.name} backend cannot serve CSV files`, 'needs a CSV file');
        case 'measure': state = await g.measure(); break;
        case 'exec': {
          const r = await g.execute(a.query, params);
          if (r.crash) return fail(`the ${a.kind} query crashed the engine: ${r.crash}\n${a.query}`, `crash: ${r.crash.split('\n')[0].slice(0, 120)}`);
          if (a.kind === 'init' && r.error)
            return fail(`setup query failed: ${r.error.code}: ${r.error.message}\n${a.query}`, errorCause('setup failed', r.error));
          last = r;
          break;
        }
        case 'result': {
          if (last.error) return fail(`expected rows, got ${last.error.code}: ${last.error.message}`, errorCause('unexpected error', last.error));
          const exp = a.empty ? { header: null, rows: [], unorderedLists: false } : a.expected;
          const u = exp.unorderedLists;
          const got = last.rows;
          const expHeader = exp.header;
          if (expHeader && got.length > 0 && last.columns.join('\u0000') !== expHeader.join('\u0000'))
            return fail(`columns ${JSON.stringify(last.columns)}, expected ${JSON.stringify(expHeader)}`, 'wrong column names');
          const gotKeys = got.map((r) => r.map((v) => canon(v, u)).join('\u0001'));
          const expKeys = exp.rows.map((r) => r.map((v) => canon(v, u)).join('\u0001'));
          let same = gotKeys.length === expKeys.length;
          if (same && a.sorted) same = gotKeys.every((k, j) => k === expKeys[j]);
          else if (same) { const x = [...gotKeys].sort(), y = [...expKeys].sort(); same = x.every((k, j) => k === y[j]); }
          if (!same) {
            const cause = gotKeys.length !== expKeys.length ? 'wrong number of rows'
              : a.sorted && [...gotKeys].sort().join() === [...expKeys].sort().join() ? 'wrong row order' : 'wrong values';
            return fail(`expected (${a.sorted ? 'in order' : 'any order'}):\n${showRows(expHeader || [], exp.rows)}\ngot:\n${showRows(last.columns, got)}`, cause);
          }
          break;
        }
        case 'error': {
          if (!last.error) return fail(`expected ${a.type} at ${a.phase} (${a.detail}), got ${last.rows.length} row(s)`, `no error raised (expected ${a.type})`);
          if (!errorMatches(a, last.error))
            return fail(`expected ${a.type} at ${a.phase} (${a.detail}), got ${last.error.code}: ${last.error.message}`, `wrong error: expected ${a.type}, got ${last.error.type}`);
          break;
        }
        case 'effects': {
          const d = diffStates(state, await g.measure());
          const bad = Object.keys(a.expected).filter((k) => a.expected[k] !== d[k]);
          if (bad.length)
            return fail(`side effects: ${bad.map((k) => `${k} expected ${a.expected[k]}, got ${d[k]}`).join('; ')}`, `wrong side effects (${bad.join(' ')})`);
          break;
        }
        default: throw new Error(`unknown action ${a.op}`);
      }
    }
    return { ok: true };
  } finally {
    await g.close();
  }
}

function fail(why, cause) { return { ok: false, why, cause }; }

// Groups engine errors by status code and message with its literals blanked.
function errorCause(what, e) {
  const msg = e.message.replace(/`[^`]*`|'[^']*'|"[^"]*"|\b\d+\b/g, '_').slice(0, 90);
  return `${what}: ${e.code}: ${msg}`;
}
