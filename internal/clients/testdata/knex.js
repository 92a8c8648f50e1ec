// Knex (on node-postgres, pg-query-stream for streams) through Tombstone;
// see common.js.
'use strict';
const knexFactory = require('knex');
const { twin, version, adminDeleted } = require('./common');

version('knex');
version('pg');
version('pg-query-stream');

const connect = (url) => knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 3 } });

twin(async (side) => {
  const knex = connect(side.url);
  side.expect('count before', await knex('authors').count({ n: '*' }), [{ n: '6' }]);
  // del() resolves to the rows-affected count.
  side.expect('del() by id', await knex('authors').where({ id: 1 }).del(), 1);
  await adminDeleted(side, 'authors', [1]);
  await adminDeleted(side, 'books', [1, 2, 3]);
  side.expect('first() of the deleted row', await knex('authors').where({ id: 1 }).first(), undefined);
  side.expect('list', await knex('authors').pluck('id').orderBy('id'), [2, 3, 4, 5, 6]);
  side.see('aggregates', await knex('books').count({ n: '*' }).sum({ s: 'pages' }).max({ hi: 'pages' }));
  side.see('join', await knex('authors as a').join('books as b', 'b.author_id', 'a.id').select('a.name', 'b.title').orderBy('b.id'));
  side.see('left join', await knex('genres as g').leftJoin('books as b', 'b.genre_id', 'g.id').groupBy('g.label').select('g.label').count({ n: 'b.id' }).orderBy('g.label'));

  // returning: the row as the client sees it (deleted_at is the column
  // Tombstone set, so it is left out of the comparison).
  const ret = await knex('books').where({ id: 4 }).del(['id', 'title']);
  side.expect('del() with returning', ret, [{ id: 4, title: 'book4' }]);
  const ins = await knex('books').insert({ author_id: 2, genre_id: 1, title: 'fresh', pages: 5 }, ['id', 'title']);
  side.expect('insert with returning', ins, [{ id: 101, title: 'fresh' }]);

  // A rolled-back transaction undoes the delete.
  const trx = await knex.transaction();
  side.expect('del() in a transaction', await trx('authors').where({ id: 2 }).del(), 1);
  side.expect('count in the transaction', await trx('authors').count({ n: '*' }), [{ n: '4' }]);
  await trx.rollback();
  side.expect('count after rollback', await knex('authors').count({ n: '*' }), [{ n: '5' }]);

  // Parameterised raw statements and bulk delete.
  side.expect('raw bound DELETE', (await knex.raw('DELETE FROM books WHERE id = ?', [5])).rowCount, 1);
  side.expect('bulk del()', await knex('books').where('pages', '>', 150).del(), 3);

  // A stream reads live rows only.
  const streamed = [];
  await new Promise((resolve, reject) => {
    const s = knex('books').select('id').orderBy('id').stream();
    s.on('data', (r) => streamed.push(r.id));
    s.on('error', reject);
    s.on('end', resolve);
  });
  side.expect('stream', streamed, [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 101]);
  await knex.destroy();

  const m = connect(side.md5Url);
  side.expect('MD5 login: del()', await m('books').where({ id: 13 }).del(), 1);
  side.expect('MD5 login: count', await m('books').count({ n: '*' }), [{ n: '10' }]);
  await m.destroy();
});
