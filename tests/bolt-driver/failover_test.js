// Neo4j's JavaScript driver across a failover (tests/e2e_bolt_failover.sh):
//   node failover_test.js MODE ARGS
// MODE write PORT DB LABEL: one (:LABEL) on the server at PORT, prints
//   "bookmark B";
// MODE after PRIMARY STANDBY OLD_PRIMARY DB KEPT B_KEPT B_LOST: after the
//   promotion, on the new primary and on the receiver's standby: a read
//   bringing B_KEPT (epoch 0, archived) sees (:KEPT); one bringing B_LOST
//   (epoch 0, never archived) is Neo.ClientError.Transaction.InvalidBookmark
//   naming the txid and where the new epoch began; neo4j:// routing through
//   either names the new primary (not OLD_PRIMARY) as the writer, and a
//   write routed through the standby lands there; a read on the standby
//   with the new write's bookmark (epoch 1) sees it; prints "bookmark B"
//   of that write;
// MODE read PORT DB LABEL B: a read bringing B sees one (:LABEL);
// MODE writer PORT DB WANT: neo4j:// routing through PORT names WANT (a
//   port) as the only writer, or none (WANT "none");
// MODE newer PORT DB B: a read bringing B (of a newer epoch than the
//   server's: the old primary, back) is InvalidBookmark.
// Ports are on 127.0.0.1; the servers run without auth. Prints "ok NAME" /
// "FAIL NAME: why" per check.
'use strict';
const neo4j = require('neo4j-driver');
const [mode, ...args] = process.argv.slice(2);
let failed = 0;
const ok = (name) => console.log(`ok   ${name}`);
const bad = (name, why) => { failed++; console.log(`FAIL ${name}: ${why}`); };
const driverAt = (port, scheme = 'bolt') =>
  neo4j.driver(`${scheme}://127.0.0.1:${port}`, neo4j.auth.basic('app', 'unused'), { maxTransactionRetryTime: 3000 });

// COUNT of (:label) read in a session that brings bookmarks.
async function countWith(port, db, label, bookmarks) {
  const driver = driverAt(port);
  const s = driver.session({ database: db, bookmarks, defaultAccessMode: neo4j.session.READ });
  try {
    const r = await s.run(`MATCH (n:${label}) RETURN count(n) AS c`);
    return r.records[0].get('c').toNumber();
  } finally {
    await s.close();
    await driver.close();
  }
}

async function write(port, db, label) {
  const driver = driverAt(port);
  const s = driver.session({ database: db });
  try {
    await s.run(`CREATE (:${label})`);
    console.log(`bookmark ${s.lastBookmarks()[0]}`);
  } catch (e) { bad('write', `${e.code} ${e.message}`); }
  await s.close();
  await driver.close();
}

// A read bringing `bookmark` must fail with InvalidBookmark whose message matches each of `want`.
async function refused(name, port, db, bookmark, want) {
  try {
    const c = await countWith(port, db, 'Kept', [bookmark]);
    bad(name, `accepted (read ${c} nodes)`);
  } catch (e) {
    const missing = want.filter((w) => !e.message.includes(w));
    if (e.code === 'Neo.ClientError.Transaction.InvalidBookmark' && !missing.length) ok(`${name}: ${e.code}`);
    else bad(name, `${e.code} ${e.message} (wanted ${want.join(', ')})`);
    console.log(`     message: ${e.message}`);
  }
}

async function writers(port, db) {
  const driver = driverAt(port, 'neo4j');
  try {
    await driver.executeQuery('RETURN 1', {}, { database: db, routing: neo4j.routing.READ });
    const rt = await driver._getOrCreateConnectionProvider()._routingTableRegistry.get(db);
    return rt ? rt.writers.map(String) : [];
  } finally {
    await driver.close();
  }
}

async function after(primary, standby, oldPrimary, db, kept, bKept, bLost) {
  const lostTxid = bLost.split(':').pop(), keptTxid = Number(bKept.split(':').pop());
  for (const [where, port] of [['new primary', primary], ['standby', standby]]) {
    try {
      const c = await countWith(port, db, kept, [bKept]);
      if (c === 1) ok(`${where}: the epoch-0 bookmark of an archived write (txid ${keptTxid}) is accepted; the write is there`);
      else bad(`${where}: archived bookmark`, `${c} (:${kept}) nodes`);
    } catch (e) { bad(`${where}: archived bookmark`, `${e.code} ${e.message}`); }
    await refused(`${where}: the bookmark of a write lost at failover`, port, db, bLost,
      [`txid ${lostTxid} of epoch 0`, `epoch 1 began at txid ${lostTxid}`, 'lost']);
  }
  for (const [where, port] of [['new primary', primary], ['standby', standby]]) {
    try {
      const w = await writers(port, db);
      if (w.join() === `127.0.0.1:${primary}`) ok(`neo4j:// via the ${where}: the new primary is the writer`);
      else bad(`routing via the ${where}`, `writers ${w}, want 127.0.0.1:${primary} (the old one was ${oldPrimary})`);
    } catch (e) { bad(`routing via the ${where}`, `${e.code} ${e.message}`); }
  }
  // a write routed through the standby lands on the new primary; its
  // bookmark (epoch 1) read back on the standby waits for it
  const rdriver = driverAt(standby, 'neo4j');
  const s = rdriver.session({ database: db });
  try {
    await s.run('CREATE (:AfterFailover)');
    const b = s.lastBookmarks()[0] || '';
    if (/^shiplog:[0-9a-f]{32}:1:\d+$/.test(b)) ok(`a write routed via the standby commits on the new primary in epoch 1 (${b})`);
    else bad('routed write', `bookmark ${b}`);
    const c = await countWith(standby, db, 'AfterFailover', [b]);
    if (c === 1) ok('the standby, given its bookmark, reads the new primary\'s write');
    else bad('epoch-1 bookmark on the standby', `${c} nodes`);
    console.log(`bookmark ${b}`);
  } catch (e) { bad('routed write', `${e.code} ${e.message}`); }
  await s.close();
  await rdriver.close();
}

(async () => {
  if (mode === 'write') await write(...args);
  else if (mode === 'after') await after(...args);
  else if (mode === 'read') {
    const [port, db, label, bookmark] = args;
    try {
      const c = await countWith(port, db, label, [bookmark]);
      if (c === 1) ok(`a read bringing ${bookmark} sees its write (:${label})`);
      else bad('read', `${c} (:${label}) nodes`);
    } catch (e) { bad('read', `${e.code} ${e.message}`); }
  } else if (mode === 'writer') {
    const [port, db, want] = args;
    const wanted = want === 'none' ? '' : `127.0.0.1:${want}`;
    try {
      const w = await writers(port, db);
      if (w.join() === wanted) ok(`neo4j:// via 127.0.0.1:${port}: the writer is ${wanted || 'none'}`);
      else bad('routing', `writers ${w}, want ${wanted || 'none'}`);
    } catch (e) { bad('routing', `${e.code} ${e.message}`); }
  } else if (mode === 'newer') await refused('the old primary, given a bookmark of the new epoch', args[0], args[1], args[2],
    ['is of epoch 1', 'promoted after this one']);
  else bad('usage', mode);
  process.exit(failed ? 1 : 0);
})();
