// Hostile and broken Bolt clients against a shiplog Bolt server, with raw
// sockets (node's net module only; no npm package):
//   node hostile.js PORT CHECK
// CHECK: garbage | huge-chunks | huge-string | slow | idle N | budget N | failed-ignored | reset-queued
// Prints "ok ..." or "FAIL ..."; exit 1 on failure. The server is
// tests/bolt_echo with --no-auth, --max-message 65536, --hello-timeout
// 1500, --max-connections 100 (tests/e2e_bolt_wire.sh).
'use strict';
const net = require('net');
const [port, check, arg] = [process.argv[2], process.argv[3], process.argv[4]];

const HANDSHAKE = Buffer.from([0x60, 0x60, 0xb0, 0x17, 0, 4, 4, 5, 0, 0, 4, 4, 0, 0, 0, 0, 0, 0, 0, 0]);
const chunk = (body) => { const h = Buffer.alloc(2); h.writeUInt16BE(body.length); return Buffer.concat([h, body, Buffer.from([0, 0])]); };
const str = (s) => { const b = Buffer.from(s); if (b.length > 15) throw new Error('short strings only'); return Buffer.concat([Buffer.from([0x80 | b.length]), b]); };
const HELLO = chunk(Buffer.concat([Buffer.from([0xb1, 0x01, 0xa1]), str('user_agent'), str('hostile/1')]));
const LOGON = chunk(Buffer.concat([Buffer.from([0xb1, 0x6a, 0xa1]), str('scheme'), str('none')]));
const RUN = (q) => chunk(Buffer.concat([Buffer.from([0xb3, 0x10]), str(q), Buffer.from([0xa0, 0xa0])]));
const PULL = chunk(Buffer.from([0xb1, 0x3f, 0xa0]));
const RESET = chunk(Buffer.from([0xb0, 0x0f]));

// A connection; s.ended resolves when it closes (from the start, so that
// a close before anyone waits is seen).
function connect() {
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), '127.0.0.1', () => resolve(s));
    s.ended = new Promise((r) => { s.on('close', r); s.on('error', r); });
    s.on('error', reject);
  });
}
// Everything the server sends until it closes (or ms pass): {data, closed}
function collect(s, ms) {
  return new Promise((resolve) => {
    const parts = [];
    let done = false;
    const finish = (closed) => { if (!done) { done = true; resolve({ data: Buffer.concat(parts), closed }); } };
    s.on('data', (d) => parts.push(d));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
    setTimeout(() => finish(false), ms);
  });
}
// The response messages' tags in a byte stream (after the 4 handshake bytes)
function tags(data) {
  const out = [];
  let p = 4;
  while (p + 4 <= data.length) {
    const n = data.readUInt16BE(p);
    if (n === 0) { p += 2; continue; }
    out.push(data[p + 3]);
    while (p + 2 <= data.length) { const k = data.readUInt16BE(p); p += 2 + k; if (k === 0) break; }
  }
  return out;
}
const name = { 0x70: 'SUCCESS', 0x71: 'RECORD', 0x7e: 'IGNORED', 0x7f: 'FAILURE' };
const fail = (why) => { console.log(`FAIL ${check}: ${why}`); process.exit(1); };
const pass = (what) => { console.log(`ok   ${what}`); process.exit(0); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function main() {
  if (check === 'garbage') {
    const s = await connect();
    const r = collect(s, 20000);
    s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const { data, closed } = await r;
    if (closed && data.length === 0) pass('an HTTP request is closed without an answer');
    fail(`closed ${closed}, ${data.length} bytes`);
  }
  if (check === 'huge-chunks') {
    // chunks of 65535 bytes, one message far over --max-message
    const s = await connect();
    const r = collect(s, 20000);
    s.write(HANDSHAKE);
    s.write(HELLO);
    s.write(LOGON);
    const big = Buffer.alloc(65537, 0x41);
    big.writeUInt16BE(65535, 0);
    for (let i = 0; i < 40 && !s.destroyed; i++) s.write(big);
    const { data, closed } = await r;
    const t = tags(data).map((x) => name[x] || x);
    if (closed && t.join() === 'SUCCESS,SUCCESS,FAILURE' && /larger than the server's limit/.test(data.toString('latin1')))
      pass('a message over the size limit: FAILURE, closed, before it was buffered');
    fail(`closed ${closed}, responses ${t}`);
  }
  if (check === 'huge-string') {
    // a HELLO declaring a 2 GiB string in a 20-byte message
    const s = await connect();
    const r = collect(s, 20000);
    s.write(HANDSHAKE);
    s.write(chunk(Buffer.concat([Buffer.from([0xb1, 0x01, 0xa1]), str('user_agent'), Buffer.from([0xd2, 0x7f, 0xff, 0xff, 0xff, 0x41])])));
    const { data, closed } = await r;
    const t = tags(data).map((x) => name[x] || x);
    if (closed && t.join() === 'FAILURE' && /Request.Invalid/.test(data.toString('latin1'))) pass('a 2 GiB declared string: FAILURE, closed');
    fail(`closed ${closed}, responses ${t}`);
  }
  if (check === 'slow') {
    // a login a byte every 400 ms (about 40 s): closed by the hello deadline
    const s = await connect();
    let closed = false;
    s.on('close', () => { closed = true; });
    s.on('error', () => { closed = true; });
    const login = Buffer.concat([HANDSHAKE, HELLO, LOGON]);
    for (let i = 0; i < login.length && !closed; i++) { s.write(login.subarray(i, i + 1)); await sleep(400); }
    if (closed) pass('a byte-at-a-time client is closed before it has logged in');
    fail('the server waited for the whole slow login');
  }
  if (check === 'idle') {
    // N connections that send nothing: refused over the cap, closed at the deadline
    const n = Number(arg);
    const socks = [];
    for (let i = 0; i < n; i++) socks.push(await connect().catch(() => null));
    const closes = socks.filter(Boolean).map((s) => Promise.race([s.ended.then(() => true), sleep(30000).then(() => false)]));
    const results = await Promise.all(closes);
    const open = results.filter((closed) => !closed).length;
    if (open === 0) pass(`${n} idle connections all closed by the server`);
    fail(`${open} of ${n} idle connections still open after 30 s`);
  }
  if (check === 'budget') {
    // N connections each start a 1.5 MB message and hold it: past the server's
    // --max-buffered, big holders fail (MemoryPoolOutOfMemoryError)
    const n = Number(arg);
    const socks = [];
    for (let i = 0; i < n; i++) socks.push(await connect());
    const results = socks.map((s) => collect(s, 10000));
    const part = Buffer.alloc(65537, 0x42);
    part.writeUInt16BE(65535, 0);
    for (const s of socks) {
      s.write(Buffer.concat([HANDSHAKE, HELLO, LOGON]));
      for (let k = 0; k < 23; k++) s.write(part);
      await sleep(100); // in turn, so that the earlier ones hold their share first
    }
    const got = await Promise.all(results);
    const refused = got.filter((r) => /MemoryPoolOutOfMemoryError/.test(r.data.toString('latin1')) && r.closed).length;
    socks.forEach((s) => s.destroy());
    // which ones fail depends on how the server's reads interleave; some must
    if (refused >= 1) pass(`${refused} of ${n} connections holding big messages failed (MemoryPoolOutOfMemoryError)`);
    fail(`${refused} of ${n} failed`);
  }
  if (check === 'failed-ignored') {
    // FAILURE, then IGNORED until RESET, then the connection works again.
    // The RESET goes out once the first answers are in: a RESET that is
    // already queued makes the server ignore what precedes it (INTERRUPTED).
    const s = await connect();
    const parts = [];
    let closed = false;
    s.on('data', (d) => parts.push(d));
    s.on('close', () => { closed = true; });
    s.write(Buffer.concat([HANDSHAKE, HELLO, LOGON, RUN('ERROR Neo.X.Y z'), PULL, RUN('ROWS 1'), PULL]));
    for (let i = 0; i < 200 && tags(Buffer.concat(parts)).length < 6; i++) await sleep(50);
    s.write(Buffer.concat([RESET, RUN('ROWS 1'), PULL, chunk(Buffer.from([0xb0, 0x02]))]));
    for (let i = 0; i < 200 && !closed; i++) await sleep(50);
    const t = tags(Buffer.concat(parts)).map((x) => name[x] || x).join();
    const want = 'SUCCESS,SUCCESS,FAILURE,IGNORED,IGNORED,IGNORED,SUCCESS,SUCCESS,RECORD,SUCCESS';
    if (t === want && closed) pass('FAILED answers IGNORED until RESET; GOODBYE closes');
    fail(`responses ${t}, want ${want}; closed ${closed}`);
  }
  if (check === 'reset-queued') {
    // a RESET queued behind requests: they are IGNORED, the RESET succeeds
    const s = await connect();
    const r = collect(s, 5000);
    s.write(Buffer.concat([HANDSHAKE, HELLO, LOGON]));
    await sleep(200); // only for the test's shape; the tags are checked, not times
    s.write(Buffer.concat([RUN('ROWS 1'), PULL, RESET, RUN('ROWS 1'), PULL, chunk(Buffer.from([0xb0, 0x02]))]));
    const { data } = await r;
    const t = tags(data).map((x) => name[x] || x).join();
    const ok1 = 'SUCCESS,SUCCESS,IGNORED,IGNORED,SUCCESS,SUCCESS,RECORD,SUCCESS'; // RESET seen in the same read
    const ok2 = 'SUCCESS,SUCCESS,SUCCESS,RECORD,SUCCESS,SUCCESS,SUCCESS,RECORD,SUCCESS'; // read apart
    if (t === ok1 || t === ok2) pass('a queued RESET: the requests before it IGNORED (or done), then READY');
    fail(`responses ${t}`);
  }
  fail('unknown check');
}
main().catch((e) => fail(e.stack));
