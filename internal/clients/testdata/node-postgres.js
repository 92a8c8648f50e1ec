// node-postgres (pg) and pg-cursor through Tombstone; see common.js.
'use strict';
const { Pool, Client } = require('pg');
const Cursor = require('pg-cursor');
const { twin, version, adminDeleted } = require('./common');

version('pg');
version('pg-cursor');

twin(async (side) => {
  const pool = new Pool({ connectionString: side.url, max: 4 });
  const errors = [];
  pool.on('error', (e) => errors.push(e.message));
  const q = async (text, values) => (await pool.query(text, values)).rows;

  side.expect('authors before', await q('SELECT count(*)::int AS n FROM authors'), [{ n: 6 }]);
  // Parameterised delete (extended protocol, unnamed statement).
  let r = await pool.query('DELETE FROM authors WHERE id = $1', [1]);
  side.expect('DELETE by id: command and rowCount', [r.command, r.rowCount], ['DELETE', 1]);
  await adminDeleted(side, 'authors', [1]);
  await adminDeleted(side, 'books', [1, 2, 3]); // ON DELETE CASCADE, carried out by Tombstone
  side.expect('by id', await q('SELECT * FROM authors WHERE id = $1', [1]), []);
  side.expect('cascaded children by parent id', await q('SELECT id FROM books WHERE author_id = 1'), []);
  side.see('list', await q('SELECT id, name FROM authors ORDER BY id'));
  side.expect('count', await q('SELECT count(*)::int AS n FROM authors'), [{ n: 5 }]);
  side.see('aggregates', await q('SELECT count(*)::int AS n, sum(pages)::int AS s, min(pages) AS lo, max(pages) AS hi FROM books'));
  side.see('join', await q('SELECT a.name, b.title, g.label FROM authors a JOIN books b ON b.author_id = a.id JOIN genres g ON g.id = b.genre_id ORDER BY b.id'));
  side.see('left join with counts', await q('SELECT g.label, count(b.id)::int AS n FROM genres g LEFT JOIN books b ON b.genre_id = g.id GROUP BY g.label ORDER BY 1'));
  side.see('subquery', await q('SELECT name FROM authors WHERE id IN (SELECT author_id FROM books WHERE pages > 30) ORDER BY 1'));

  // A rollback undoes the delete.
  const c = await pool.connect();
  await c.query('BEGIN');
  r = await c.query('DELETE FROM authors WHERE id = 2');
  side.expect('DELETE in a transaction', r.rowCount, 1);
  side.expect('count inside the transaction', (await c.query('SELECT count(*)::int AS n FROM authors')).rows, [{ n: 4 }]);
  await c.query('ROLLBACK');
  side.expect('count after ROLLBACK', (await c.query('SELECT count(*)::int AS n FROM authors')).rows, [{ n: 5 }]);
  side.expect('row back after ROLLBACK', (await c.query('SELECT name FROM authors WHERE id = 2')).rows, [{ name: 'author2' }]);

  // Named prepared statement: parsed once, executed three times.
  const del = (id) => c.query({ name: 'delete-book', text: 'DELETE FROM books WHERE id = $1', values: [id] });
  side.expect('named prepared DELETE, first', (await del(10)).rowCount, 1);
  side.expect('named prepared DELETE, again', (await del(11)).rowCount, 1);
  side.expect('named prepared DELETE of a deleted row', (await del(10)).rowCount, 0);
  const sel = (id) => c.query({ name: 'get-book', text: 'SELECT id FROM books WHERE id = $1', values: [id] });
  side.expect('named prepared SELECT of a deleted row', (await sel(11)).rows, []);
  side.expect('named prepared SELECT of a live row', (await sel(12)).rows, [{ id: 12 }]);

  // Bulk delete.
  r = await c.query('DELETE FROM books WHERE pages > $1', [150]);
  side.expect('bulk DELETE', r.rowCount, 3);

  // pg-cursor reads live rows in batches.
  const cur = c.query(new Cursor('SELECT id FROM books WHERE author_id <= $1 ORDER BY id', [4]));
  const batches = [];
  for (;;) {
    const rows = await cur.read(2);
    if (rows.length === 0) break;
    batches.push(rows.map((x) => x.id));
  }
  await cur.close();
  side.expect('pg-cursor batches', batches, [[4, 5], [6, 7], [8, 9], [12]]);

  // Several statements in one simple Query: one result per statement.
  const multi = await c.query('DELETE FROM books WHERE id = 7; DELETE FROM books WHERE id IN (8, 9, 10); SELECT count(*)::int AS n FROM books');
  side.expect('multi-statement query', multi.map((x) => [x.command, x.rowCount]), [['DELETE', 1], ['DELETE', 2], ['SELECT', 1]]);
  side.see('multi-statement count', multi[2].rows);
  c.release();

  // MD5 login, and a delete through it.
  const m = new Client({ connectionString: side.md5Url });
  await m.connect();
  side.expect('MD5 login: DELETE', (await m.query('DELETE FROM books WHERE id = $1', [13])).rowCount, 1);
  side.expect('MD5 login: by id', (await m.query('SELECT id FROM books WHERE id = 13')).rows, []);
  await m.end();
  await pool.end();

  // pool.end() on pools of many idle connections: no 'error' event (issue
  // 14: a Node process without a listener dies of one).
  for (let round = 0; round < 15; round++) {
    const p = new Pool({ connectionString: side.url, max: 8 });
    p.on('error', (e) => errors.push(e.message));
    await Promise.all(Array.from({ length: 8 }, () => p.query('SELECT count(*) FROM authors')));
    await p.end();
  }
  await new Promise((res) => setTimeout(res, 200)); // a late 'error' would arrive here
  side.expect("'error' events from pools", errors, []);
});
