// Concurrent writers on Neo4j's JavaScript driver that say what was
// acknowledged, for the Bolt fault run (tests/e2e_bolt_nemesis.sh):
//   node ack_writer.js PORT WORKERS FIRST COUNT [STANDBY_PORT DB]
// WORKERS sessions write seqs FIRST..FIRST+COUNT-1, each seq once: a seq
// divisible by 4 is an explicit transaction creating (:T {seq}) and
// (:P {of: seq}) (both or neither), every other seq an autocommit
// CREATE (:T {seq}). Prints "ack SEQ" once the server acknowledged the
// commit (for an autocommit statement: the final SUCCESS; for an explicit
// transaction: COMMIT's), "err SEQ CODE" when it failed. A worker stops
// after its third error in a row (the server is gone); the script ends when
// every worker has stopped or the seqs run out, with exit 0.
// With STANDBY_PORT (a receiver's Bolt, database DB), every eighth
// acknowledged seq is read there in a session that brings the write's
// bookmark: "seen SEQ" (the read waited for the write and found it),
// "unseen SEQ" (it ran without seeing it: a causal read broken), or
// "stale SEQ CODE" (the read failed, as it may when the standby does not
// catch up within its bookmark timeout).
'use strict';
const neo4j = require('neo4j-driver');
const [port, workers, first, count, standbyPort] = process.argv.slice(2).map(Number);
const standbyDb = process.argv[7];

const driver = neo4j.driver(`bolt://127.0.0.1:${port}`, neo4j.auth.basic('app', 'unused'), {
  connectionTimeout: 2000,
  connectionAcquisitionTimeout: 4000,
  maxConnectionPoolSize: workers,
});
const standby = standbyPort
  ? neo4j.driver(`bolt://127.0.0.1:${standbyPort}`, neo4j.auth.basic('app', 'unused'), { connectionTimeout: 2000 })
  : null;
let next = first;
const end = first + count;
// Synchronous writes: a line printed is on its way before the next commit.
const say = (line) => require('fs').writeSync(1, line + '\n');

async function one(session, seq) {
  if (seq % 4 === 0) {
    const tx = session.beginTransaction();
    try {
      await tx.run('CREATE (:T {seq: $seq})', { seq: neo4j.int(seq) });
      await tx.run('CREATE (:P {of: $seq})', { seq: neo4j.int(seq) });
      await tx.commit();
    } catch (e) {
      try { await tx.close(); } catch (_) { /* the connection is gone */ }
      throw e;
    }
  } else {
    await session.run('CREATE (:T {seq: $seq})', { seq: neo4j.int(seq) });
  }
}

// The write's (:T {seq}) on the standby, read after the write's bookmarks.
async function causalRead(seq, bookmarks) {
  const session = standby.session({ database: standbyDb, bookmarks, defaultAccessMode: neo4j.session.READ });
  try {
    const r = await session.run('MATCH (t:T {seq: $seq}) RETURN count(t) AS c', { seq: neo4j.int(seq) });
    say(`${r.records[0].get('c').toNumber() === 1 ? 'seen' : 'unseen'} ${seq}`);
  } catch (e) {
    say(`stale ${seq} ${e.code || e.name}`);
  } finally {
    try { await session.close(); } catch (_) { /* as below */ }
  }
}

async function worker() {
  let errors = 0;
  while (errors < 3 && next < end) {
    const seq = next++;
    const session = driver.session();
    try {
      await one(session, seq);
      say(`ack ${seq}`);
      errors = 0;
      if (standby && seq % 8 === 1) await causalRead(seq, session.lastBookmarks());
    } catch (e) {
      say(`err ${seq} ${e.code || e.name}`);
      errors++;
    } finally {
      try { await session.close(); } catch (_) { /* as above */ }
    }
  }
}

Promise.all(Array.from({ length: workers }, worker))
  .then(() => Promise.all([driver, standby].filter(Boolean).map((d) => d.close().catch(() => {}))))
  .then(() => process.exit(0));
