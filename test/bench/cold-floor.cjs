'use strict';
// The floor of a cold `saga checkout` (`npm run bench:cold`): only the SQLite work a checkout
// cannot avoid, with no CLI, engine or logger: load better-sqlite3 and its native addon, open the
// seeded database in WAL mode with `synchronous = FULL`, make 3 durable commits (as many as a
// checkout makes) and close it. What saga takes beyond this is its own code.
// Usage: node test/bench/cold-floor.cjs <database>
const Database = require('better-sqlite3');

const db = new Database(process.argv[2], { fileMustExist: true, timeout: 30_000 });
db.prepare('PRAGMA journal_mode = WAL').get();
db.prepare('PRAGMA synchronous = FULL').run();
const product = db.prepare('SELECT price_cents FROM products WHERE product_id = 101');
// Each commit takes a unit and puts it back: real writes (a page to the WAL, an fsync per
// commit) that leave the stock the timed checkouts need. (Rewriting a row with the same values
// would write nothing: SQLite skips an unchanged row.)
const take = db.prepare('UPDATE inventory SET stock = stock - 1 WHERE product_id = 101');
const putBack = db.prepare('UPDATE inventory SET stock = stock + 1 WHERE product_id = 101');
product.get();
for (let i = 0; i < 3; i++) {
  db.transaction(() => {
    take.run();
    putBack.run();
  }).immediate();
}
db.close();
