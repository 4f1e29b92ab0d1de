// An application on Neo4j's JavaScript driver against a shiplog primary
// (`shiplog serve`) and its hot standby (`shiplog receive --bolt`), as
// scripts/demo.sh runs it in step 9:
//   node examples/bolt_routing.js PRIMARY_HOST:PORT DATABASE CA_FILE
// One neo4j:// driver, given the primary's address only: a write goes to
// the routing table's writer (the primary); the read after it goes to a
// reader, which the primary names from what its shipper learned (the
// standby), and carries the write's bookmark, so the standby answers only
// once it has applied that write. Both servers speak TLS with certificates
// of the demo's CA (CA_FILE); the servers run without logins (--no-auth).
// Prints what it did; exits 1 when the read did not come from another
// server than the write or did not see the write.
'use strict';
const neo4j = require('neo4j-driver');

const [primary, database, caFile] = process.argv.slice(2);
if (!caFile) {
  console.error('usage: node examples/bolt_routing.js PRIMARY_HOST:PORT DATABASE CA_FILE');
  process.exit(2);
}

async function main() {
  const driver = neo4j.driver(`neo4j://${primary}`, neo4j.auth.none(), {
    encrypted: 'ENCRYPTION_ON',
    trust: 'TRUST_CUSTOM_CA_SIGNED_CERTIFICATES',
    trustedCertificates: [caFile],
  });
  try {
    const text = `written through the driver at ${new Date().toISOString()}`;
    const w = await driver.executeQuery('CREATE (n:DemoNote {text: $text}) RETURN elementId(n) AS id', { text },
      { database, routing: neo4j.routing.WRITE });
    // executeQuery keeps the bookmarks of its writes and sends them with the next query
    const bookmarks = await driver.executeQueryBookmarkManager.getBookmarks();
    console.log(`write on ${w.summary.server.address} (the writer): CREATE (:DemoNote {text: '${text}'})`);
    console.log(`  element id ${w.records[0].get('id')}, bookmark ${bookmarks.join(', ')}`);
    const read = { database, routing: neo4j.routing.READ };
    const r = await driver.executeQuery('MATCH (n:DemoNote) RETURN n.text AS text', {}, read);
    const reader = r.summary.server.address;
    const seen = r.records.map((rec) => rec.get('text'));
    console.log(`read on ${reader} (a reader) with that bookmark: ${seen.length} DemoNote: '${seen.join("', '")}'`);
    const p = await driver.executeQuery('MATCH (p:Person) RETURN count(p) AS persons', {}, read);
    console.log(`read on ${p.summary.server.address}: ${p.records[0].get('persons')} Person nodes (the LDBC graph, shipped)`);
    if (reader === w.summary.server.address) throw new Error('the read went to the writer, not to the standby');
    if (!seen.includes(text)) throw new Error('the standby did not see the write');
    console.log('the standby answered with the write it was told to wait for');
  } finally {
    await driver.close();
  }
}

main().catch((e) => {
  console.error(`bolt_routing: ${e.code ? `${e.code}: ` : ''}${e.message}`);
  process.exit(1);
});
