// Prints a canonical export (spec/export.md, on standard input) with the ids
// set aside, one line per node and per relationship, sorted:
//   N ["Label",...] {properties}
//   R TYPE ["StartLabel",...] {start properties} -> ["EndLabel",...] {end properties} {properties}
// so that two stores holding the same graph under other ids print the same
// text (tests/e2e_cypher_scripts.sh). Values keep their exact JSON text
// (int64 and 1.0 included), which JSON.parse would not.
import { readFileSync } from 'node:fs';
import { parseJson } from './tck/backends/cli.mjs';

function text(x) {
  switch (x.j) {
    case 'object': return `{${[...x.m].map(([k, v]) => `${JSON.stringify(k)}:${text(v)}`).join(',')}}`;
    case 'array': return `[${x.a.map(text).join(',')}]`;
    case 'string': return JSON.stringify(x.s);
    case 'float': { const s = String(x.v); return /[.eEIN]/.test(s) ? s : `${s}.0`; }
    case 'int': case 'bool': return String(x.v);
    default: return 'null';
  }
}

const nodes = new Map();
const out = [];
const rels = [];
for (const line of readFileSync(0, 'utf8').split('\n')) {
  if (!line) continue;
  const o = parseJson(line);
  const props = text(o.m.get('properties'));
  if (o.m.get('type').s === 'node') {
    const n = `${text(o.m.get('labels'))} ${props}`;
    nodes.set(o.m.get('id').s, n);
    out.push(`N ${n}`);
  } else if (o.m.get('type').s === 'relationship') rels.push(o);
  /* index and constraint lines (the schema) are not the graph */
}
for (const r of rels) {
  const end = (k) => nodes.get(r.m.get(k).m.get('id').s) ?? `missing node ${r.m.get(k).m.get('id').s}`;
  out.push(`R ${r.m.get('label').s} ${end('start')} -> ${end('end')} ${text(r.m.get('properties'))}`);
}
process.stdout.write(out.sort().map((l) => `${l}\n`).join(''));
