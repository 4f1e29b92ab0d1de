// The TCK backend that drives shiplog's command line: a fresh store per
// scenario (`shiplog init`), each query a `shiplog query STORE QUERY --format
// jsonl` process (parameters as one --params JSON object), and the graph's
// state for the side effects read from `shiplog export` (spec/export.md), so
// that measuring does not depend on the engine under test.
//
// A backend is {name, newGraph()}; a graph is {execute(query, params),
// measure(), close()} (and registerProcedure(signature, table) when the
// backend can). execute resolves to {columns, rows} (rows: arrays of tck.mjs
// values in column order), {error: {code, type, message}} for a statement
// error, or {crash: why} when the process died otherwise (signal, timeout,
// output that is not the contract's).

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { V, toJson } from '../tck.mjs';

// ---- JSON with int64 and key order kept (JSON.parse loses both) ---------------

export function parseJson(text) {
  let i = 0;
  const fail = (why) => { throw new Error(`JSON at ${i}: ${why}: ${text.slice(0, 200)}`); };
  const ws = () => { while (i < text.length && ' \t\r\n'.includes(text[i])) i++; };
  function value() {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const m = new Map();
      ws();
      if (text[i] === '}') { i++; return { j: 'object', m }; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const k = string();
        ws();
        if (text[i++] !== ':') fail('expected :');
        m.set(k, value());
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return { j: 'object', m }; }
        fail('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const a = [];
      ws();
      if (text[i] === ']') { i++; return { j: 'array', a }; }
      for (;;) {
        a.push(value());
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return { j: 'array', a }; }
        fail('expected , or ]');
      }
    }
    if (c === '"') return { j: 'string', s: string() };
    const num = /^-?\d+(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (num) {
      i += num[0].length;
      return num[1] || num[2] ? { j: 'float', v: Number(num[0]) } : { j: 'int', v: BigInt(num[0]) };
    }
    for (const [w, v] of [['true', { j: 'bool', v: true }], ['false', { j: 'bool', v: false }], ['null', { j: 'null' }]])
      if (text.startsWith(w, i)) { i += w.length; return v; }
    fail('expected a value');
  }
  function string() {
    let s = '';
    for (i++; ; i++) {
      if (i >= text.length) fail('string not closed');
      const c = text[i];
      if (c === '"') { i++; return s; }
      if (c !== '\\') { s += c; continue; }
      const e = text[++i];
      if (e === 'u') { s += String.fromCharCode(parseInt(text.slice(i + 1, i + 5), 16)); i += 4; }
      else s += { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '/': '/', '\\': '\\', '"': '"' }[e] ?? fail('bad escape');
    }
  }
  const v = value();
  ws();
  if (i !== text.length) fail('trailing characters');
  return v;
}

const TEMPORAL = ['$date', '$localtime', '$time', '$localdatetime', '$datetime', '$duration'];

// The canonical JSON writes a time of day in full (12:30:00, fractions as
// given); Cypher's toString, which the TCK's strings are, prints it as
// java.time does: no :00 seconds when seconds and fraction are zero, the
// fraction in groups of 3 digits. Same value, another spelling.
export function javaTimeText(kind, s) {
  const at = kind === '$localdatetime' || kind === '$datetime' ? s.indexOf('T') + 1 : 0;
  if (kind === '$date' || kind === '$duration' || (at === 0 && kind !== '$localtime' && kind !== '$time')) return s;
  const m = /^(\d{2}:\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(.*)$/s.exec(s.slice(at));
  if (!m) return s;
  const nano = (m[3] || '').padEnd(9, '0');
  let frac = nano.replace(/(000)+$/, '');
  if (frac) frac = `.${frac}`;
  const hm = !m[2] || (m[2] === '00' && !frac) ? m[1] : `${m[1]}:${m[2]}${frac}`;
  return s.slice(0, at) + hm + m[4];
}
const isObj = (x, ...keys) => x.j === 'object' && x.m.size === keys.length && keys.every((k) => x.m.has(k));

function props(x) {
  if (x.j !== 'object') throw new Error('properties must be an object');
  return new Map([...x.m].map(([k, v]) => [k, toValue(v)]));
}

function node(x) {
  return V.node(x.m.get('labels').a.map((l) => l.s), props(x.m.get('properties')));
}

// spec/query.md's jsonl value -> a TCK value. Temporal values become the
// strings Cypher's toString prints (javaTimeText), which is how the TCK
// writes them.
export function toValue(x) {
  switch (x.j) {
    case 'null': return V.null;
    case 'bool': return V.bool(x.v);
    case 'int': return V.int(x.v);
    case 'float': return V.float(x.v);
    case 'string': return V.str(x.s);
    case 'array': return V.list(x.a.map(toValue));
    case 'object': break;
    default: throw new Error(`unknown JSON kind ${x.j}`);
  }
  if (x.m.size === 1) {
    const [k, v] = [...x.m][0];
    if (k === '$double' && v.j === 'string') return V.float(Number(v.s));
    if (TEMPORAL.includes(k) && v.j === 'string') return V.str(javaTimeText(k, v.s));
  }
  if (isObj(x, 'elementId', 'labels', 'properties')) return node(x);
  if (isObj(x, 'elementId', 'type', 'start', 'end', 'properties')) return V.rel(x.m.get('type').s, props(x.m.get('properties')));
  if (isObj(x, 'nodes', 'relationships')) {
    const ns = x.m.get('nodes').a;
    const rs = x.m.get('relationships').a;
    if (ns.length !== rs.length + 1) throw new Error(`a path of ${ns.length} nodes and ${rs.length} relationships`);
    const links = rs.map((r, j) => ({
      dir: r.m.get('start').s === ns[j].m.get('elementId').s ? '>' : '<',
      rel: V.rel(r.m.get('type').s, props(r.m.get('properties'))),
      node: node(ns[j + 1]),
    }));
    return V.path(node(ns[0]), links);
  }
  return V.map(new Map([...x.m].map(([k, v]) => [k, toValue(v)])));
}

const STATS_KEYS = /^(nodes_created|nodes_deleted|relationships_created|relationships_deleted|properties_set|labels_added|labels_removed|indexes_added|indexes_removed|constraints_added|constraints_removed|system_updates|contains_updates|contains_system_updates)$/;

function isStatsLine(o) {
  if (!isObj(o, 'stats')) return false;
  const s = o.m.get('stats');
  return s.j === 'object' && [...s.m.keys()].every((k) => STATS_KEYS.test(k));
}

// ---- processes -----------------------------------------------------------------

export function run(bin, args, timeoutMs) {
  return new Promise((resolve) => {
    const p = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [], err = [];
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; p.kill('SIGKILL'); }, timeoutMs);
    p.stdout.on('data', (d) => out.push(d));
    p.stderr.on('data', (d) => err.push(d));
    p.on('error', (e) => { clearTimeout(timer); resolve({ code: null, signal: null, spawnError: e.message, stdout: '', stderr: '' }); });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

export function processFailure(r, what) {
  if (r.spawnError) return `${what}: ${r.spawnError}`;
  if (r.timedOut) return `${what}: timed out`;
  if (r.signal) return `${what}: killed by ${r.signal}`;
  return null;
}

// The graph's state for the side effects, read from `shiplog export STORE`
// (also beside a running `shiplog serve`, which holds the store open).
export async function exportState(bin, store, timeoutMs) {
  const r = await run(bin, ['export', store], timeoutMs);
  if (r.code !== 0) throw new Error(`shiplog export: ${processFailure(r, 'export') || r.stderr.trim()}`);
  const state = { nodes: new Set(), rels: new Set(), labels: new Set(), props: [] };
  for (const line of r.stdout.split('\n')) {
    if (!line) continue;
    const o = parseJson(line);
    const type = o.m.get('type').s;
    const id = `${type[0]}${o.m.get('id').s}`;
    (type === 'node' ? state.nodes : state.rels).add(id);
    if (type === 'node') for (const l of o.m.get('labels').a) state.labels.add(l.s);
    for (const [k, v] of o.m.get('properties').m) state.props.push(`${id}\u0000${k}\u0000${stringify(v)}`);
  }
  return state;
}

export function makeCliBackend({ bin, tmp, timeoutMs = 30000 }) {
  return {
    name: 'cli',
    async newGraph() {
      const dir = await mkdtemp(join(tmp, 'tck-'));
      const store = join(dir, 'store');
      const r = await run(bin, ['init', store], timeoutMs);
      if (r.code !== 0) throw new Error(`shiplog init ${store}: ${processFailure(r, 'init') || r.stderr.trim()}`);
      return {
        async execute(query, params) {
          const args = ['query', store, query, '--format', 'jsonl'];
          if (params.size) args.push('--params', `{${[...params].map(([k, v]) => `${JSON.stringify(k)}:${toJson(v)}`).join(',')}}`);
          const r = await run(bin, args, timeoutMs);
          const died = processFailure(r, 'shiplog query');
          if (died) return { crash: died };
          if (r.code !== 0) {
            const m = /(Neo\.(ClientError|TransientError|DatabaseError)\.(\w+)\.(\w+)):?\s*(.*)/.exec(r.stderr);
            if (r.code !== 1 || !m) return { crash: `exit ${r.code} without a Neo4j status code: ${r.stderr.trim().slice(0, 300)}` };
            return { error: { code: m[1], type: m[4], message: m[5].trim() } };
          }
          const lines = r.stdout.split('\n').filter((l) => l.trim() !== '');
          let columns = null;
          const rows = [];
          try {
            const objs = lines.map(parseJson);
            if (objs.length && isStatsLine(objs[objs.length - 1])) objs.pop();
            for (const o of objs) {
              if (o.j !== 'object') throw new Error('a row is not a JSON object');
              const cols = [...o.m.keys()];
              if (columns === null) columns = cols;
              else if (cols.join('\u0000') !== columns.join('\u0000')) throw new Error(`rows with different columns: ${columns} / ${cols}`);
              rows.push(cols.map((c) => toValue(o.m.get(c))));
            }
          } catch (e) {
            return { crash: `unreadable output: ${e.message}` };
          }
          return { columns: columns || [], rows };
        },
        measure: () => exportState(bin, store, timeoutMs),
        async close() { await rm(dir, { recursive: true, force: true }); },
      };
    },
  };
}

// A value's text for the property multiset: 1 and 1.0 stay different.
function stringify(x) {
  switch (x.j) {
    case 'object': return `{${[...x.m].map(([k, v]) => `${JSON.stringify(k)}:${stringify(v)}`).join(',')}}`;
    case 'array': return `[${x.a.map(stringify).join(',')}]`;
    case 'string': return JSON.stringify(x.s);
    case 'float': return `F${x.v}`;
    case 'int': return `${x.v}`;
    case 'bool': return String(x.v);
    default: return 'null';
  }
}

// The inverse of toValue, as spec/query.md prints a value (element ids made
// up): run.mjs --parse-only sends every expected value of the TCK through
// fromValue, parseJson and toValue to check that the round trip is exact.
export function fromValue(v, ids = { n: 0 }) {
  const props = (m) => `{${[...m].map(([k, x]) => `${JSON.stringify(k)}:${fromValue(x, ids)}`).join(',')}}`;
  const node = (n, id) => `{"elementId":"${id}","labels":${JSON.stringify(n.labels)},"properties":${props(n.props)}}`;
  const rel = (r, s, e) => `{"elementId":"r${ids.n++}","type":${JSON.stringify(r.type)},"start":"${s}","end":"${e}","properties":${props(r.props)}}`;
  switch (v.k) {
    case 'node': return node(v, `n${ids.n++}`);
    case 'rel': return rel(v, 'n-1', 'n-2');
    case 'path': {
      const nids = [v.start, ...v.links.map((l) => l.node)].map(() => `n${ids.n++}`);
      const ns = [v.start, ...v.links.map((l) => l.node)].map((n, j) => node(n, nids[j]));
      const rs = v.links.map((l, j) => (l.dir === '>' ? rel(l.rel, nids[j], nids[j + 1]) : rel(l.rel, nids[j + 1], nids[j])));
      return `{"nodes":[${ns.join(',')}],"relationships":[${rs.join(',')}]}`;
    }
    case 'list': return `[${v.items.map((x) => fromValue(x, ids)).join(',')}]`;
    case 'map': return props(v.m);
    default: return toJson(v);
  }
}
