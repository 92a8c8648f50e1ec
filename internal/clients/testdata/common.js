// Helpers shared by the Node.js clients of the matrix. A scenario runs
// once through Tombstone (soft-delete database) and once directly against
// the twin whose deletes are real; what each side saw is recorded with
// see() and the two records must be equal. expect() states what the
// answer must be on both sides.
'use strict';
const assert = require('node:assert/strict');

class Side {
  constructor(name, url, md5Url) {
    this.name = name;     // "soft" (through Tombstone) or "real" (direct)
    this.url = url;       // SCRAM role
    this.md5Url = md5Url; // MD5 role, same database
    this.seen = [];
  }
  get soft() { return this.name === 'soft'; }
  see(label, value) {
    this.seen.push([label, JSON.stringify(value)]);
    return value;
  }
  expect(label, got, want) {
    try {
      assert.deepStrictEqual(got, want);
    } catch (e) {
      throw new Error(`${this.name}: ${label}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    }
    console.log(`ok: ${this.name}: ${label}`);
    return this.see(label, got);
  }
}

function version(name, pkg) {
  const path = require('node:path');
  const fs = require('node:fs');
  const file = path.join(__dirname, 'node_modules', pkg || name, 'package.json');
  console.log(`version: ${name} ${JSON.parse(fs.readFileSync(file, 'utf8')).version}`);
}

// twin runs scenario on both sides and compares what they saw.
async function twin(scenario) {
  console.log(`version: node ${process.versions.node}`);
  const soft = new Side('soft', process.env.TS_SOFT_URL, process.env.TS_SOFT_MD5_URL);
  const real = new Side('real', process.env.TS_REAL_URL, process.env.TS_REAL_MD5_URL);
  try {
    await scenario(soft);
    await scenario(real);
    compare(soft, real);
  } catch (e) {
    console.log(`FAIL: ${e.stack || e}`);
    process.exit(1);
  }
}

function compare(soft, real) {
  const n = Math.max(soft.seen.length, real.seen.length);
  const bad = [];
  for (let i = 0; i < n; i++) {
    const s = soft.seen[i] || ['(nothing)', ''], r = real.seen[i] || ['(nothing)', ''];
    if (s[0] !== r[0] || s[1] !== r[1]) bad.push(`${s[0]}: through Tombstone ${s[1]}, direct ${r[0]} ${r[1]}`);
  }
  if (bad.length) throw new Error('through Tombstone and direct differ:\n  ' + bad.join('\n  '));
  console.log(`ok: through Tombstone and direct agree on ${n} observations`);
}

// adminDeletedAt reads, as the privileged role and directly, whether the
// rows are still on disk with deleted_at set (soft side only).
async function adminDeleted(side, table, ids) {
  if (!side.soft) return;
  const { Client } = require('pg');
  const c = new Client({ connectionString: process.env.TS_ADMIN_SOFT_URL });
  await c.connect();
  const r = await c.query(`SELECT id, deleted_at IS NOT NULL AS deleted FROM ${table} WHERE id = ANY($1) ORDER BY id`, [ids]);
  await c.end();
  const want = ids.map((id) => ({ id, deleted: true }));
  try {
    assert.deepStrictEqual(r.rows, want);
  } catch (e) {
    throw new Error(`${table} ${ids} must be on disk with deleted_at set; on disk: ${JSON.stringify(r.rows)}`);
  }
  console.log(`ok: soft: ${table} ${ids} kept on disk with deleted_at set`);
}

module.exports = { twin, version, adminDeleted };
