'use strict';
// Preloaded into a saga process (`node --expose-gc --require <this file>`) by
// test/cli/sqlite-objects.test.ts. Records every native better-sqlite3 object the process makes:
// each database and each statement, including those `db.pragma()` prepares out of sight. At exit
// it runs the garbage collector and writes to stderr how many of them were freed. On Node 24 a
// freed one aborts the process (see src/store/sqlite/kept-database.ts); here it is counted, on
// any Node.
const { writeSync } = require('node:fs');
const Database = require('better-sqlite3');
const { cppdb } = require('better-sqlite3/lib/util');

const probe = new Database(':memory:');
const nativeDatabase = Object.getPrototypeOf(probe[cppdb]);
const prepare = nativeDatabase.prepare;
const made = [];
const seen = new WeakSet([probe[cppdb]]);
nativeDatabase.prepare = function (...args) {
  if (!seen.has(this)) {
    seen.add(this);
    made.push(new WeakRef(this));
  }
  const stmt = prepare.apply(this, args);
  made.push(new WeakRef(stmt));
  return stmt;
};

process.on('exit', () => {
  globalThis.gc();
  const freed = made.filter((ref) => ref.deref() === undefined).length;
  writeSync(2, `better-sqlite3 objects: ${made.length} made, ${freed} freed\n`);
  probe.close();
});
