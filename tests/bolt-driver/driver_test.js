// Neo4j's JavaScript driver against a shiplog Bolt server on the echo
// backend (bolt/bolt.h: "RETURN ..." echoes its parameters, ROWS N, GRAPH,
// ERROR CODE MESSAGE). tests/e2e_bolt_wire.sh runs it:
//   node driver_test.js PORT USER PASSWORD EXPECT_VERSION [quick|refused]
// quick: one managed read transaction only (the driver retries while the
// server is full), for the hostile-client checks; refused: the connection
// must fail (TLS refused). TLS: BOLT_TLS_CA=FILE trusts that CA (and
// connects to localhost), BOLT_TLS_CLIENT=PREFIX presents PREFIX.crt/.key.
// Prints "ok NAME" / "FAIL NAME: why" per check; exit status 1 if any failed.
'use strict';
const neo4j = require('neo4j-driver');
const [port, user, password, wantVersion, mode] = process.argv.slice(2);
const tlsCa = process.env.BOLT_TLS_CA, tlsClient = process.env.BOLT_TLS_CLIENT;
const host = tlsCa ? 'localhost' : '127.0.0.1'; // the test certificate names localhost
const url = `bolt://${host}:${port}`;
const config = {};
if (tlsCa) Object.assign(config, { encrypted: 'ENCRYPTION_ON', trust: 'TRUST_CUSTOM_CA_SIGNED_CERTIFICATES', trustedCertificates: [tlsCa] });
if (tlsClient)
  config.clientCertificate = neo4j.clientCertificateProviders.rotating({ initialCertificate: { certfile: `${tlsClient}.crt`, keyfile: `${tlsClient}.key` } });
let failed = 0;
const ok = (name) => console.log(`ok   ${name}`);
const bad = (name, why) => { failed++; console.log(`FAIL ${name}: ${why}`); };

const { same, show, values } = require('./values.js');

async function quick() {
  const driver = neo4j.driver(url, neo4j.auth.basic(user, password), { ...config, maxTransactionRetryTime: 60000 });
  try {
    const r = await driver.executeQuery('RETURN $q', { q: 'served' }, { routing: neo4j.routing.READ });
    if (r.records[0].get('q') === 'served') ok('a managed transaction is served');
    else bad('quick', 'wrong value');
  } catch (e) { bad('quick', `${e.code} ${e.message}`); }
  await driver.close();
}

async function refused() {
  const driver = neo4j.driver(url, neo4j.auth.basic(user, password), config);
  try {
    await driver.verifyConnectivity();
    bad('refused', 'the connection was accepted');
  } catch (e) {
    if (e.code === 'ServiceUnavailable') ok('the connection is refused');
    else bad('refused', `${e.code} ${e.message}`);
  }
  await driver.close();
}

async function main() {
  if (mode === 'quick') return quick();
  if (mode === 'refused') return refused();
  const driver = neo4j.driver(url, neo4j.auth.basic(user, password), config);
  try {
    const info = await driver.getServerInfo();
    const v = `${info.protocolVersion.major}.${info.protocolVersion.minor}`;
    if (v === wantVersion && info.agent === 'Neo4j/5.26.0') ok(`handshake chose Bolt ${v}, agent ${info.agent}`);
    else bad('handshake', `Bolt ${v} agent ${info.agent}, want ${wantVersion}`);

    // every value kind, alone, as a parameter and back
    const session = driver.session();
    for (const [name, value] of Object.entries(values)) {
      try {
        const r = await session.run('RETURN $x AS x', { x: value });
        const got = r.records[0].get('x');
        if (same(got, value)) ok(`round trip ${name}`);
        else bad(`round trip ${name}`, `sent ${show(value)}, got ${show(got)}`);
      } catch (e) { bad(`round trip ${name}`, `${e.code} ${e.message}`); }
    }
    // all of them in one record
    {
      const r = await session.run('RETURN everything', values);
      const rec = r.records[0];
      const wrong = Object.keys(values).filter((k) => !same(rec.get(k), values[k]));
      if (!wrong.length && rec.keys.length === Object.keys(values).length) ok('one record of every kind');
      else bad('one record of every kind', `wrong: ${wrong.join(', ')}`);
    }

    // graph structures
    {
      const r = await session.run('GRAPH');
      const node = r.records[0].get('node'), rel = r.records[0].get('rel'), path = r.records[0].get('path');
      const eids = wantVersion.startsWith('5');
      const good = node instanceof neo4j.types.Node && node.labels[0] === 'Person' && node.properties.name === 'Alice' &&
        node.elementId === (eids ? '4:echo:1' : '1') &&
        rel instanceof neo4j.types.Relationship && rel.type === 'KNOWS' && rel.properties.since.equals(2020) &&
        rel.startNodeElementId === (eids ? '4:echo:1' : '1') && rel.endNodeElementId === (eids ? '4:echo:2' : '2') &&
        path instanceof neo4j.types.Path && path.length === 1 && path.start.properties.name === 'Alice' &&
        path.end.properties.name === 'Bob' && path.segments[0].relationship.type === 'KNOWS';
      if (good) ok('node, relationship and path structures');
      else bad('graph structures', JSON.stringify({ node, rel, path }));
    }

    // records in batches (PULL n, has_more)
    {
      const s = driver.session({ fetchSize: 3 });
      const r = await s.run('ROWS 10');
      const got = r.records.map((x) => x.get('i').toNumber());
      await s.close();
      if (got.length === 10 && got[0] === 1 && got[9] === 10) ok('10 records fetched 3 at a time');
      else bad('PULL n', `${got}`);
    }

    // a failure, then the session goes on (FAILURE, RESET)
    try {
      await session.run('ERROR Neo.ClientError.Statement.SyntaxError Invalid input here');
      bad('failure code', 'no error');
    } catch (e) {
      if (e.code === 'Neo.ClientError.Statement.SyntaxError' && /Invalid input/.test(e.message)) ok('failure carries code and message');
      else bad('failure code', `${e.code} ${e.message}`);
    }
    {
      const r = await session.run('RETURN $x', { x: 'after' });
      if (r.records[0].get('x') === 'after') ok('session works after a failure');
      else bad('recovery', 'wrong value');
    }
    await session.close();

    // explicit transactions: two results open, commit's bookmark; rollback
    {
      const s = driver.session();
      const tx = await s.beginTransaction();
      const a = tx.run('ROWS 2');
      const b = tx.run('RETURN $y', { y: 'in tx' });
      const [ra, rb] = await Promise.all([a, b]);
      await tx.commit();
      const bm = s.lastBookmarks();
      if (ra.records.length === 2 && rb.records[0].get('y') === 'in tx' && bm.length === 1 && /^echo:\d+$/.test(bm[0]))
        ok(`explicit transaction with two results, commit bookmark ${bm[0]}`);
      else bad('explicit transaction', `${ra.records.length} ${bm}`);
      const tx2 = await s.beginTransaction();
      await tx2.run('RETURN 1');
      await tx2.rollback();
      ok('rollback');
      // a failure inside a transaction ends it; the session goes on
      const tx3 = await s.beginTransaction();
      try { await tx3.run('ERROR Neo.ClientError.Statement.ArithmeticError / by zero'); bad('failure in tx', 'no error'); }
      catch (e) { if (e.code === 'Neo.ClientError.Statement.ArithmeticError') ok('failure in a transaction'); else bad('failure in tx', e.code); }
      try { await tx3.rollback(); } catch (e) { /* the driver may refuse: the transaction failed */ }
      const r = await s.executeRead((t) => t.run('RETURN $z', { z: neo4j.int(5) }));
      if (r.records[0].get('z').equals(5)) ok('managed transaction after a failed one');
      else bad('managed transaction', 'wrong');
      await s.close();
    }

    // neo4j:// routing against the one server (ROUTE)
    {
      const rd = neo4j.driver(`neo4j://${host}:${port}`, neo4j.auth.basic(user, password), config);
      try {
        const r = await rd.executeQuery('RETURN $r', { r: 'routed' }, { routing: neo4j.routing.READ });
        if (r.records[0].get('r') === 'routed') ok('neo4j:// routing table (ROUTE)');
        else bad('routing', 'wrong value');
      } catch (e) { bad('routing', `${e.code} ${e.message}`); }
      await rd.close();
    }
  } finally {
    await driver.close();
  }

  // wrong credentials: Unauthorized
  for (const [u, p, what] of [[user, password + 'x', 'wrong password'], ['nobody', password, 'unknown user']]) {
    const d = neo4j.driver(url, neo4j.auth.basic(u, p), config);
    try {
      await d.verifyConnectivity();
      bad(what, 'connected');
    } catch (e) {
      if (e.code === 'Neo.ClientError.Security.Unauthorized') ok(`${what}: Neo.ClientError.Security.Unauthorized`);
      else bad(what, `${e.code} ${e.message}`);
    }
    await d.close();
  }
}

main().then(() => process.exit(failed ? 1 : 0), (e) => { console.log(`FAIL driver: ${e.code} ${e.stack}`); process.exit(1); });
