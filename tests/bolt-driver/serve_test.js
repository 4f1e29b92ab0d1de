// Neo4j's JavaScript driver against `shiplog serve` (the query engine over
// Bolt). tests/e2e_bolt.sh runs it:
//   node serve_test.js PORT MODE [ARGS]
// MODE main USER PASSWORD READER_PASSWORD EDITOR_PASSWORD: values, graph
//   structures, transactions, failures, roles, bookmarks, routing;
// MODE write USER PASSWORD DB LABEL: one (:LABEL), prints "bookmark B";
// MODE bookmark-wait USER PASSWORD DB LABEL B: a read with bookmark B must
//   see the (:LABEL) (waiting for the standby to apply it);
// MODE standby USER PASSWORD DB NODES PRIMARY_PORT: reads NODES nodes, writes
//   refused, neo4j:// writes go to the primary;
// MODE primary-route USER PASSWORD DB STANDBY_PORT: the primary's READ
//   servers include the standby; primary-route-gone: they do not;
// MODE wrong-password USER: the login must be refused;
// MODE tx-timeout USER PASSWORD: a quiet transaction is rolled back.
// Prints "ok NAME" / "FAIL NAME: why" per check.
'use strict';
const neo4j = require('neo4j-driver');
const { same, show, values } = require('./values.js');
const [port, mode, ...args] = process.argv.slice(2);
let failed = 0;
const ok = (name) => console.log(`ok   ${name}`);
const bad = (name, why) => { failed++; console.log(`FAIL ${name}: ${why}`); };
const expectCode = async (name, code, fn) => {
  try { await fn(); bad(name, 'no error'); } catch (e) {
    if (e.code === code) ok(`${name}: ${code}`);
    else bad(name, `${e.code} ${e.message}`);
  }
};

async function main(user, password, readerPw, editorPw) {
  const driver = neo4j.driver(`bolt://127.0.0.1:${port}`, neo4j.auth.basic(user, password));
  const session = driver.session();
  try {
    // every value kind as a parameter, through the engine and back
    for (const [name, value] of Object.entries(values)) {
      try {
        const r = await session.run('RETURN $x AS x', { x: value });
        const got = r.records[0].get('x');
        if (same(got, value)) ok(`round trip ${name}`);
        else bad(`round trip ${name}`, `sent ${show(value)}, got ${show(got)}`);
      } catch (e) { bad(`round trip ${name}`, `${e.code} ${e.message}`); }
    }
    // stored as properties and read back
    {
      const props = { s: 'é€', i: neo4j.int(-5), f: 2.5, b: true, d: values.date, dt: values.dateTimeZone,
        dur: values.duration, p: values.wgs84, l: [neo4j.int(1), neo4j.int(2)], by: values.bytes };
      await session.run('CREATE (n:Props) SET n = $props', { props });
      const r = await session.run('MATCH (n:Props) RETURN n');
      const got = r.records[0].get('n').properties;
      const wrong = Object.keys(props).filter((k) => !same(got[k], props[k]));
      if (!wrong.length) ok('every property kind stored and read back');
      else bad('properties', `wrong: ${wrong.join(', ')}`);
    }
    // literals of the engine's own
    {
      const r = await session.run("RETURN date('2024-02-29') AS d, datetime('2024-07-01T12:00[Europe/Paris]') AS z, " +
        "point({x: 1, y: 2}) AS p, duration('P1M2DT3S') AS du, {a: [1, 'x']} AS m");
      const rec = r.records[0];
      if (rec.get('d').toString() === '2024-02-29' && rec.get('z').timeZoneId === 'Europe/Paris' &&
          Number(rec.get('z').timeZoneOffsetSeconds) === 7200 && rec.get('p').x === 1 && rec.get('du').months.equals(1) &&
          rec.get('m').a[1] === 'x') ok('temporal, spatial and map results');
      else bad('results', JSON.stringify(rec.toObject()));
    }

    // graph structures with element ids
    {
      const w = await session.run("CREATE p = (a:Person {name: 'Alice'})-[r:KNOWS {since: 2020}]->(b:Person {name: 'Bob'}) RETURN a, r, b, p");
      const c = w.summary.counters.updates();
      if (c.nodesCreated === 2 && c.relationshipsCreated === 1 && c.propertiesSet === 3 && w.summary.queryType === 'rw')
        ok('write counters and query type rw');
      else bad('counters', JSON.stringify(c) + w.summary.queryType);
      const r = await session.run("MATCH p = (a:Person {name: 'Bob'})<-[r:KNOWS]-(b) RETURN a, r, p");
      const a = r.records[0].get('a'), rel = r.records[0].get('r'), p = r.records[0].get('p');
      const good = a instanceof neo4j.types.Node && /^4:[0-9a-f-]{36}:\d+$/.test(a.elementId) && a.labels[0] === 'Person' &&
        rel instanceof neo4j.types.Relationship && /^5:/.test(rel.elementId) && rel.endNodeElementId === a.elementId &&
        rel.properties.since.equals(2020) && p instanceof neo4j.types.Path && p.length === 1 &&
        p.start.properties.name === 'Bob' && p.end.properties.name === 'Alice' &&
        p.segments[0].relationship.type === 'KNOWS' && p.segments[0].relationship.startNodeElementId === p.end.elementId;
      if (good) ok('node, relationship and a path walked against its direction');
      else bad('graph structures', JSON.stringify(r.records[0].toObject()));
    }

    // records in batches (PULL n, has_more)
    {
      const s = driver.session({ fetchSize: 7 });
      const r = await s.run('UNWIND range(1, 50) AS i RETURN i');
      const got = r.records.map((x) => x.get('i').toNumber());
      await s.close();
      if (got.length === 50 && got[49] === 50) ok('50 records fetched 7 at a time');
      else bad('PULL n', `${got}`);
    }

    // EXPLAIN: the plan, the columns, no row, nothing written; PROFILE runs
    {
      const r = await driver.executeQuery('EXPLAIN CREATE (:Explained) RETURN 1 AS one');
      const c = await driver.executeQuery('MATCH (e:Explained) RETURN count(e) AS c');
      const plan = r.summary.plan;
      if (r.records.length === 0 && r.keys[0] === 'one' && plan && plan.operatorType === 'ProduceResults@shiplog' &&
          plan.children.length === 1 && c.records[0].get('c').equals(0))
        ok(`EXPLAIN: a plan (${plan.operatorType} <- ${plan.children[0].operatorType}), no row, nothing written`);
      else bad('EXPLAIN', JSON.stringify({ n: r.records.length, keys: r.keys, plan }));
      const p = await driver.executeQuery('PROFILE UNWIND [1, 2] AS x RETURN x');
      if (p.records.length === 2 && p.summary.profile && p.summary.profile.operatorType === 'ProduceResults@shiplog')
        ok('PROFILE: the rows and the plan');
      else bad('PROFILE', JSON.stringify(p.summary.profile));
    }

    // a second statement while the first result still has rows to fetch
    // (the server buffers them), then the first's rows to its end
    {
      const s = driver.session({ fetchSize: 2 });
      const tx = s.beginTransaction();
      const first = tx.run('UNWIND range(1, 10) AS i RETURN i');
      try {
        const second = await tx.run('RETURN 5 AS five');
        const rows = (await first).records.map((x) => x.get('i').toNumber());
        await tx.commit();
        if (second.records[0].get('five').equals(5) && rows.length === 10 && rows[9] === 10)
          ok('a statement runs while an earlier result has rows left');
        else bad('second statement', `${rows}`);
      } catch (e) { bad('second statement', `${e.code} ${e.message}`); }
      await s.close();
    }

    // write counters count every row the statement wrote, also the rows a
    // client did not fetch (the rest is discarded and still runs)
    {
      const s = driver.session({ fetchSize: 5 });
      const res = s.run('UNWIND range(1, 40) AS i CREATE (:Counted {i: i}) RETURN i');
      let seen = 0;
      for await (const rec of res) { if (++seen === 3) break; } // eslint-disable-line no-unused-vars
      const sum = await res.summary();
      const c = await s.run('MATCH (n:Counted) RETURN count(n) AS c');
      await s.run('MATCH (n:Counted) DELETE n');
      await s.close();
      const created = sum.counters.updates().nodesCreated;
      if (created === 40 && c.records[0].get('c').equals(40)) ok('write counters after a partial fetch: 40 nodes created');
      else bad('counters after a partial fetch', `nodesCreated ${created}, stored ${c.records[0].get('c')}`);
    }

    // explicit transaction: several results open, read your writes, commit
    {
      const s = driver.session();
      const tx = s.beginTransaction();
      const a = tx.run('UNWIND range(1, 3) AS i CREATE (:T {i: i}) RETURN i');
      const b = tx.run('MATCH (t:T) RETURN count(t) AS c');
      const [ra, rb] = await Promise.all([a, b]);
      await tx.commit();
      const bm = s.lastBookmarks();
      if (ra.records.length === 3 && rb.records[0].get('c').equals(3) && bm.length === 1 && /^shiplog:[0-9a-f]{32}:\d+:\d+$/.test(bm[0]))
        ok(`explicit transaction with two open results, bookmark ${bm[0]}`);
      else bad('explicit transaction', `${ra.records.length} ${rb.records[0].get('c')} ${bm}`);
      const tx2 = s.beginTransaction();
      await tx2.run('CREATE (:Gone)');
      await tx2.rollback();
      const r = await s.run('MATCH (g:Gone) RETURN count(g) AS c');
      if (r.records[0].get('c').equals(0)) ok('rollback leaves nothing');
      else bad('rollback', 'node kept');
      // a failure in a transaction ends it; the session goes on
      const tx3 = s.beginTransaction();
      await tx3.run('CREATE (:Gone)');
      await expectCode('failure inside a transaction', 'Neo.ClientError.Statement.SyntaxError', () => tx3.run('RETURN 1 +'));
      const r2 = await s.run('MATCH (g:Gone) RETURN count(g) AS c');
      if (r2.records[0].get('c').equals(0)) ok('a failed transaction wrote nothing; the session goes on');
      else bad('failed transaction', 'node kept');
      await s.close();
    }

    // managed transactions
    {
      const s = driver.session();
      const n = await s.executeWrite(async (tx) => {
        await tx.run('CREATE (:M {v: 1})');
        return (await tx.run('MATCH (m:M) RETURN count(m) AS c')).records[0].get('c');
      });
      const m = await s.executeRead((tx) => tx.run('MATCH (m:M) RETURN m.v AS v'));
      if (n.equals(1) && m.records[0].get('v').equals(1)) ok('executeWrite then executeRead');
      else bad('managed', `${n}`);
      await expectCode('a write in a read transaction', 'Neo.ClientError.Statement.AccessMode',
        () => s.executeRead((tx) => tx.run('CREATE (:No)')));
      await s.close();
      const r = await driver.executeQuery('MATCH (m:M) RETURN count(m) AS c', {}, { database: 'neo4j' });
      if (r.records[0].get('c').equals(1)) ok('executeQuery');
      else bad('executeQuery', 'wrong count');
    }

    // error codes, then recovery
    await expectCode('syntax', 'Neo.ClientError.Statement.SyntaxError', () => session.run('MATCH (n RETURN n'));
    await expectCode('missing parameter', 'Neo.ClientError.Statement.ParameterMissing', () => session.run('RETURN $nope'));
    await expectCode('type', 'Neo.ClientError.Statement.TypeError', () => session.run("RETURN 1 + 'a' + date()"));
    await expectCode('unknown database', 'Neo.ClientError.Database.DatabaseNotFound',
      () => driver.executeQuery('RETURN 1', {}, { database: 'nosuchdb' }));
    let schema = true;
    try {
      await session.run('CREATE CONSTRAINT one_k IF NOT EXISTS FOR (u:U) REQUIRE u.k IS UNIQUE');
    } catch (e) {
      if (!/not supported/.test(e.message)) throw e;
      schema = false;
      console.log(`skip schema checks: ${e.message}`);
    }
    if (schema) {
      await session.run('CREATE (:U {k: 1})');
      await expectCode('unique constraint', 'Neo.ClientError.Schema.ConstraintValidationFailed',
        () => session.run('CREATE (:U {k: 1})'));
      const mixed = session.beginTransaction();
      await mixed.run('CREATE (:U {k: 2})');
      await expectCode('schema after data in one transaction', 'Neo.ClientError.Transaction.ForbiddenDueToTransactionType',
        () => mixed.run('CREATE INDEX u_v IF NOT EXISTS FOR (u:U) ON (u.v)'));
      try { await mixed.rollback(); } catch (e) { /* the transaction failed already */ }
    }
    {
      const r = await session.run('RETURN 42 AS x');
      if (r.records[0].get('x').equals(42)) ok('session works after failures');
      else bad('recovery', 'wrong value');
    }

    // roles
    {
      const rd = neo4j.driver(`bolt://127.0.0.1:${port}`, neo4j.auth.basic('reader', readerPw));
      const r = await rd.executeQuery('MATCH (m:M) RETURN count(m) AS c');
      if (r.records[0].get('c').equals(1)) ok('a reader reads');
      else bad('reader', 'wrong count');
      await expectCode('a reader writes', 'Neo.ClientError.Security.Forbidden', () => rd.executeQuery('CREATE (:R)'));
      await rd.close();
      const ed = neo4j.driver(`bolt://127.0.0.1:${port}`, neo4j.auth.basic('editor', editorPw));
      await ed.executeQuery('CREATE (:E)');
      ok('an editor writes');
      if (schema)
        await expectCode('an editor changes the schema', 'Neo.ClientError.Security.Forbidden',
          () => ed.executeQuery('CREATE INDEX e_v FOR (e:E) ON (e.v)'));
      if (schema) {
        const shown = await driver.executeQuery('SHOW INDEXES');
        if (shown.records.some((r) => r.get('name') === 'e_v')) bad('refused schema change', 'the index e_v exists after all');
        else ok('... and the index was not created');
        // refused before it runs: a no-op IF NOT EXISTS, and one that would fail, say Forbidden too
        await expectCode('an editor: CREATE CONSTRAINT IF NOT EXISTS that exists', 'Neo.ClientError.Security.Forbidden',
          () => ed.executeQuery('CREATE CONSTRAINT one_k IF NOT EXISTS FOR (u:U) REQUIRE u.k IS UNIQUE'));
        await expectCode('an editor: an index on a constraint\'s schema', 'Neo.ClientError.Security.Forbidden',
          () => ed.executeQuery('CREATE INDEX FOR (u:U) ON (u.k)'));
        const noop = await driver.executeQuery('CREATE CONSTRAINT one_k IF NOT EXISTS FOR (u:U) REQUIRE u.k IS UNIQUE');
        if (noop.summary.queryType === 's') ok('a schema statement with nothing to do is of query type s');
        else bad('query type of a no-op schema statement', noop.summary.queryType);
      }
      await ed.close();
    }

    // bookmarks: a bookmark of this store is waited for (here: at once);
    // one of another epoch or store is refused clearly
    {
      const bm = session.lastBookmarks()[0];
      const s = driver.session({ bookmarks: [bm] });
      await s.run('RETURN 1');
      await s.close();
      ok('a transaction with the last bookmark runs');
      const [, store, epoch, txid] = bm.split(':');
      const s2 = driver.session({ bookmarks: [`shiplog:${store}:${Number(epoch) + 1}:${txid}`] });
      await expectCode('a bookmark of another epoch', 'Neo.ClientError.Transaction.InvalidBookmark', () => s2.run('RETURN 1'));
      await s2.close();
      const s3 = driver.session({ bookmarks: [`shiplog:${store}:${epoch}:${Number(txid) + 1000}`] });
      await expectCode('a bookmark the store never reaches', 'Neo.TransientError.Transaction.BookmarkTimeout', () => s3.run('RETURN 1'));
      await s3.close();
    }
  } catch (e) { bad('unexpected', `${e.code} ${e.stack}`); }
  await session.close();
  await driver.close();

  // neo4j:// routing: WRITE here, READ the --read-replica list
  const rdriver = neo4j.driver(`neo4j://127.0.0.1:${port}`, neo4j.auth.basic(user, password));
  try {
    const w = await rdriver.executeQuery('CREATE (:Routed) RETURN 1 AS one', {}, { routing: neo4j.routing.WRITE });
    const r = await rdriver.executeQuery('MATCH (x:Routed) RETURN count(x) AS c', {}, { routing: neo4j.routing.WRITE });
    if (w.records[0].get('one').equals(1) && r.records[0].get('c').equals(1)) ok('neo4j:// writes and reads its write');
    else bad('routing', 'wrong values');
    const rt = await rdriver._getOrCreateConnectionProvider()._routingTableRegistry.get('neo4j');
    const readers = rt ? rt.readers.map(String) : [];
    if (rt && rt.writers.map(String).join() === `127.0.0.1:${port}` && readers.includes(`127.0.0.1:${port}`))
      ok(`routing table: writers ${rt.writers}, readers ${readers}`);
    else bad('routing table', rt ? `${rt.writers} / ${readers}` : 'none');
  } catch (e) { bad('routing', `${e.code} ${e.message}`); }
  await rdriver.close();
}

// The standby side: [user, password, database, ...]
const [sUser, sPassword, sDb] = args;
const standbyDriver = (scheme = 'bolt') => neo4j.driver(`${scheme}://127.0.0.1:${port}`, neo4j.auth.basic(sUser, sPassword));

async function write(label) {
  const driver = standbyDriver();
  const s = driver.session({ database: sDb });
  try {
    await s.run(`CREATE (:${label})`);
    console.log(`bookmark ${s.lastBookmarks()[0]}`);
  } catch (e) { bad('write', `${e.code} ${e.message}`); }
  await s.close();
  await driver.close();
}

async function bookmarkWait(label, bookmark) {
  const driver = standbyDriver();
  const s = driver.session({ database: sDb, bookmarks: [bookmark], defaultAccessMode: neo4j.session.READ });
  try {
    const r = await s.run(`MATCH (w:${label}) RETURN count(w) AS c`);
    if (r.records[0].get('c').equals(1)) ok(`a read with a bookmark sees its write (${label})`);
    else bad('bookmark wait', `saw ${r.records[0].get('c')} nodes`);
  } catch (e) { bad('bookmark wait', `${e.code} ${e.message}`); }
  await s.close();
  await driver.close();
}

async function standby(primaryNodes, primaryPort) {
  const driver = standbyDriver();
  const s = driver.session({ database: sDb });
  try {
    const r = await s.run('MATCH (n) RETURN count(n) AS c');
    if (r.records[0].get('c').equals(Number(primaryNodes))) ok(`the standby reads what the primary has (${primaryNodes} nodes)`);
    else bad('standby read', `${r.records[0].get('c')} nodes, want ${primaryNodes}`);
    await expectCode('a write on the standby', 'Neo.ClientError.General.ForbiddenOnReadOnlyDatabase', () => s.run('CREATE (:No)'));
    await expectCode('a database the receiver lacks', 'Neo.ClientError.Database.DatabaseNotFound',
      () => driver.executeQuery('RETURN 1', {}, { database: 'nosuchstream' }));
  } catch (e) { bad('standby', `${e.code} ${e.message}`); }
  await s.close();
  await driver.close();
  const rdriver = standbyDriver('neo4j');
  try {
    const r = await rdriver.executeQuery('MATCH (n) RETURN count(n) AS c', {}, { database: sDb, routing: neo4j.routing.READ });
    if (r.records[0].get('c').equals(Number(primaryNodes))) ok('neo4j:// reads on the standby');
    else bad('standby routing', 'wrong count');
    // the standby's routing table names the primary as writer (learned over replication)
    await rdriver.executeQuery('CREATE (:ViaStandby)', {}, { database: sDb });
    const w = await rdriver.executeQuery('MATCH (v:ViaStandby) RETURN count(v) AS c', {}, { database: sDb });
    const rt = await rdriver._getOrCreateConnectionProvider()._routingTableRegistry.get(sDb);
    if (w.records[0].get('c').equals(1) && rt && rt.writers.map(String).join() === `127.0.0.1:${primaryPort}`)
      ok(`neo4j:// at the standby writes to the primary (writers ${rt.writers})`);
    else bad('standby routing', `writers ${rt && rt.writers}`);
  } catch (e) { bad('standby routing', `${e.code} ${e.message}`); }
  await rdriver.close();
}

// A transaction that holds the writer and goes quiet is rolled back at the
// server's --tx-timeout: other writers go on, its commit fails.
async function txTimeout(user, password) {
  const driver = neo4j.driver(`bolt://127.0.0.1:${port}`, neo4j.auth.basic(user, password));
  const s1 = driver.session(), s2 = driver.session();
  try {
    const tx = s1.beginTransaction();
    await tx.run('CREATE (:Quiet)');
    await s2.run('CREATE (:Other)'); // waits for the writer until the reaper frees it
    ok('another writer goes on once the quiet transaction times out');
    await expectCode('the quiet transaction commits', 'Neo.ClientError.Transaction.TransactionTimedOut', () => tx.commit());
    const r = await s2.run('MATCH (q:Quiet) RETURN count(q) AS c');
    if (r.records[0].get('c').equals(0)) ok('the quiet transaction left nothing');
    else bad('tx timeout', 'its node was kept');
  } catch (e) { bad('tx timeout', `${e.code} ${e.message}`); }
  await s1.close();
  await s2.close();
  await driver.close();
}

// The primary's routing table lists the standby that ships from it.
async function primaryRoute(standbyPort, named = true) {
  const driver = standbyDriver('neo4j');
  try {
    const r = await driver.executeQuery('MATCH (n) RETURN count(n) AS c', {}, { database: sDb, routing: neo4j.routing.READ });
    const rt = await driver._getOrCreateConnectionProvider()._routingTableRegistry.get(sDb);
    const readers = rt ? rt.readers.map(String) : [];
    if (r.records.length === 1 && readers.includes(`127.0.0.1:${standbyPort}`) === named)
      ok(`the primary's routing table ${named ? 'names' : 'no longer names'} its standby as reader (${readers})`);
    else bad('primary routing', `readers ${readers}`);
  } catch (e) { bad('primary routing', `${e.code} ${e.message}`); }
  await driver.close();
}

async function wrongPassword(user) {
  const driver = neo4j.driver(`bolt://127.0.0.1:${port}`, neo4j.auth.basic(user, 'not the password'));
  await expectCode('wrong password', 'Neo.ClientError.Security.Unauthorized', () => driver.verifyConnectivity());
  await driver.close();
}

(async () => {
  if (mode === 'main') await main(...args);
  else if (mode === 'write') await write(args[3]);
  else if (mode === 'bookmark-wait') await bookmarkWait(args[3], args[4]);
  else if (mode === 'standby') await standby(args[3], args[4]);
  else if (mode === 'primary-route') await primaryRoute(args[3]);
  else if (mode === 'primary-route-gone') await primaryRoute(args[3], false);
  else if (mode === 'wrong-password') await wrongPassword(args[0]);
  else if (mode === 'tx-timeout') await txTimeout(args[0], args[1]);
  else bad('usage', mode);
  process.exit(failed ? 1 : 0);
})();
