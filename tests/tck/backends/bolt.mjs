// The TCK backend that drives shiplog over Bolt with Neo4j's JavaScript
// driver (tests/bolt-driver pins it; NODE_PATH must name its node_modules):
// a fresh store per scenario (`shiplog init`) served by its own `shiplog
// serve STORE --listen 127.0.0.1:0 --no-auth`, so no scenario sees another's
// data or schema; each query an autocommit transaction (session.run) with
// its parameters as the driver's values. What comes back are the driver's
// types (Integer, Node, Relationship, Path, the temporal classes, Point),
// read into tck.mjs values as the cli backend reads the engine's JSON: the
// same values compare equal. A failure's Neo4j status code gives the TCK's
// error type (its last part, as the cli backend reads it from stderr). The
// side effects are measured with `shiplog export` beside the server
// (cli.mjs's exportState), so measuring does not go through Bolt.
//
// The server of a scenario that dies or hangs makes that scenario a crash
// (with the server's last words); the next scenario starts a new one.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { V } from '../tck.mjs';
import { run, processFailure, exportState } from './cli.mjs';

// The driver is CommonJS and found through NODE_PATH, which only require reads.
export function loadDriver() {
  try {
    return createRequire(import.meta.url)('neo4j-driver');
  } catch (e) {
    throw new Error(`neo4j-driver cannot be loaded (NODE_PATH=${process.env.NODE_PATH || ''}; tests/lib_e2e.sh's bolt_driver_install sets it): ${e.message}`);
  }
}

// ---- the driver's values -> tck.mjs values ------------------------------------

const big = (x) => BigInt(x.toString());
const pad = (n, w) => String(n).padStart(w, '0');

// Cypher's toString of the temporal values (base/temporal.c's formatting,
// java.time's): the strings the TCK writes and the cli backend reads.
function yearText(y) {
  if (y > 9999n) return `+${y}`;
  return y < 0n ? `-${pad(-y, 4)}` : pad(y, 4);
}
function timeText(h, m, s, ns) {
  let t = `${pad(h, 2)}:${pad(m, 2)}`;
  if (s !== 0n || ns !== 0n) t += `:${pad(s, 2)}`;
  if (ns !== 0n) t += ns % 1000000n === 0n ? `.${pad(ns / 1000000n, 3)}` : ns % 1000n === 0n ? `.${pad(ns / 1000n, 6)}` : `.${pad(ns, 9)}`;
  return t;
}
function offsetText(off) {
  if (off === 0n) return 'Z';
  const a = off < 0n ? -off : off;
  const hm = `${off < 0n ? '-' : '+'}${pad(a / 3600n, 2)}:${pad((a / 60n) % 60n, 2)}`;
  return a % 60n ? `${hm}:${pad(a % 60n, 2)}` : hm;
}
const dateText = (t) => `${yearText(big(t.year))}-${pad(big(t.month), 2)}-${pad(big(t.day), 2)}`;
const clockText = (t) => timeText(big(t.hour), big(t.minute), big(t.second), big(t.nanosecond));
// Neo4j's DurationValue: each unit with its own sign, the fraction without trailing zeros.
function durationText(d) {
  const mo = big(d.months), days = big(d.days);
  let s = big(d.seconds), ns = big(d.nanoseconds);
  if (s > 0n && ns < 0n) { s--; ns += 1000000000n; } else if (s < 0n && ns > 0n) { s++; ns -= 1000000000n; }
  if (!mo && !days && !s && !ns) return 'PT0S';
  const part = (q, u) => (q ? `${q}${u}` : '');
  let t = `P${part(mo / 12n, 'Y')}${part(mo % 12n, 'M')}${part(days, 'D')}`;
  if (s || ns) {
    t += `T${part(s / 3600n, 'H')}${part((s % 3600n) / 60n, 'M')}`;
    const r = s % 60n;
    if (r || ns) {
      const a = ns < 0n ? -ns : ns;
      t += `${r === 0n && ns < 0n ? '-' : ''}${r}${a ? `.${pad(a, 9).replace(/0+$/, '')}` : ''}S`;
    }
  }
  return t;
}

function makeToValue(neo4j) {
  const node = (n) => V.node(n.labels, props(n.properties));
  const rel = (r) => V.rel(r.type, props(r.properties));
  function props(o) {
    return new Map(Object.entries(o).map(([k, v]) => [k, toValue(v)]));
  }
  function toValue(x) {
    if (x === null || x === undefined) return V.null;
    switch (typeof x) {
      case 'boolean': return V.bool(x);
      case 'number': return V.float(x);
      case 'bigint': return V.int(x);
      case 'string': return V.str(x);
      default: break;
    }
    if (neo4j.isInt(x)) return V.int(big(x));
    if (Array.isArray(x)) return V.list(x.map(toValue));
    if (x instanceof Int8Array || x instanceof Uint8Array) // as the engine's JSON writes bytes
      return V.map(new Map([['$bytes', V.str(Buffer.from(x.buffer, x.byteOffset, x.length).toString('base64'))]]));
    if (neo4j.isNode(x)) return node(x);
    if (neo4j.isRelationship(x)) return rel(x);
    if (neo4j.isPath(x)) {
      const links = x.segments.map((seg) => ({
        dir: seg.relationship.startNodeElementId === seg.start.elementId ? '>' : '<',
        rel: rel(seg.relationship),
        node: node(seg.end),
      }));
      return V.path(node(x.start), links);
    }
    if (neo4j.isDate(x)) return V.str(dateText(x));
    if (neo4j.isLocalTime(x)) return V.str(clockText(x));
    if (neo4j.isTime(x)) return V.str(clockText(x) + offsetText(big(x.timeZoneOffsetSeconds)));
    if (neo4j.isLocalDateTime(x)) return V.str(`${dateText(x)}T${clockText(x)}`);
    if (neo4j.isDateTime(x)) {
      const off = x.timeZoneOffsetSeconds == null ? '' : offsetText(big(x.timeZoneOffsetSeconds));
      return V.str(`${dateText(x)}T${clockText(x)}${off}${x.timeZoneId ? `[${x.timeZoneId}]` : ''}`);
    }
    if (neo4j.isDuration(x)) return V.str(durationText(x));
    if (neo4j.isPoint(x)) { // as the engine's JSON writes a point: {"$point": {srid, x, y[, z]}}
      const p = new Map([['srid', V.int(big(x.srid))], ['x', V.float(x.x)], ['y', V.float(x.y)]]);
      if (x.z !== undefined) p.set('z', V.float(x.z));
      return V.map(new Map([['$point', V.map(p)]]));
    }
    if (typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) return V.map(props(x));
    throw new Error(`a driver value of an unknown kind: ${x && x.constructor && x.constructor.name}`);
  }
  return toValue;
}

// A tck.mjs parameter -> the driver's value (integers as Integer: a JS
// number goes out as a float).
function makeFromValue(neo4j) {
  return function fromValue(v) {
    switch (v.k) {
      case 'null': return null;
      case 'nan': return NaN;
      case 'bool': return v.v;
      case 'int': return neo4j.int(v.v.toString());
      case 'float': return v.v;
      case 'string': return v.v;
      case 'list': return v.items.map(fromValue);
      case 'map': return Object.fromEntries([...v.m].map(([k, x]) => [k, fromValue(x)]));
      default: throw new Error(`a ${v.k} cannot be a parameter`);
    }
  };
}

// "Neo.ClientError.Statement.SyntaxError" -> the TCK's type, SyntaxError.
const STATUS = /^Neo\.(ClientError|TransientError|DatabaseError)\.(\w+)\.(\w+)$/;

// ---- the server of one scenario -------------------------------------------------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// `shiplog serve` on a port of its choosing; resolves to {proc, port, log(), exited}.
async function startServer(bin, store, dir, timeoutMs) {
  const ready = join(dir, 'port');
  const proc = spawn(bin, ['serve', store, '--listen', '127.0.0.1:0', '--no-auth', '--ready-file', ready],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const err = [];
  proc.stderr.on('data', (d) => err.push(d));
  const srv = { proc, exit: null, log: () => Buffer.concat(err).toString('utf8').trim().split('\n').slice(-3).join(' | ') };
  srv.exited = new Promise((resolve) => proc.on('close', (code, signal) => { srv.exit = signal ? `killed by ${signal}` : `exit ${code}`; resolve(); }));
  proc.on('error', (e) => { srv.exit = e.message; });
  for (const t0 = Date.now(); Date.now() - t0 < timeoutMs; await sleep(5)) {
    if (srv.exit) throw new Error(`shiplog serve ${store}: ${srv.exit}: ${srv.log()}`);
    const text = await readFile(ready, 'utf8').catch(() => '');
    if (/^\d+\s*$/.test(text) && Number(text) > 0) { srv.port = Number(text); return srv; }
  }
  proc.kill('SIGKILL');
  throw new Error(`shiplog serve ${store}: not listening after ${timeoutMs} ms: ${srv.log()}`);
}

export function makeBoltBackend({ bin, tmp, timeoutMs = 30000 }) {
  const neo4j = loadDriver();
  const toValue = makeToValue(neo4j);
  const fromValue = makeFromValue(neo4j);
  return {
    name: 'bolt',
    async newGraph() {
      const dir = await mkdtemp(join(tmp, 'tck-'));
      const store = join(dir, 'store');
      const r = await run(bin, ['init', store], timeoutMs);
      if (r.code !== 0) throw new Error(`shiplog init ${store}: ${processFailure(r, 'init') || r.stderr.trim()}`);
      const srv = await startServer(bin, store, dir, timeoutMs);
      const driver = neo4j.driver(`bolt://127.0.0.1:${srv.port}`, neo4j.auth.none(),
        { connectionTimeout: timeoutMs, maxConnectionPoolSize: 1, logging: { level: 'error', logger: () => {} } });
      // the server's death or a query past timeoutMs: a crash
      const crash = (what) => ({ crash: `${what}${srv.exit ? ` (serve ${srv.exit}: ${srv.log()})` : ''}` });
      return {
        async execute(query, params) {
          const session = driver.session();
          let timer;
          const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); });
          try {
            const out = await Promise.race([session.run(query, Object.fromEntries([...params].map(([k, v]) => [k, fromValue(v)]))), timeout]);
            if (out === 'timeout') {
              srv.proc.kill('SIGKILL');
              return crash(`the query timed out after ${timeoutMs} ms`);
            }
            const columns = out.records.length ? out.records[0].keys : [];
            return { columns, rows: out.records.map((rec) => rec.keys.map((k) => toValue(rec.get(k)))) };
          } catch (e) {
            const m = STATUS.exec(e.code || '');
            if (!m) return crash(`${e.code || 'no status code'}: ${e.message}`);
            return { error: { code: e.code, type: m[3], message: e.message } };
          } finally {
            clearTimeout(timer);
            await Promise.race([session.close().catch(() => {}), sleep(1000)]);
          }
        },
        measure: () => exportState(bin, store, timeoutMs),
        async close() {
          await Promise.race([driver.close().catch(() => {}), sleep(2000)]);
          if (!srv.exit) {
            srv.proc.kill('SIGTERM');
            await Promise.race([srv.exited, sleep(5000)]);
            if (!srv.exit) srv.proc.kill('SIGKILL');
            await srv.exited;
          }
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}
