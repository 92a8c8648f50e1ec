// Sequelize 6 (on node-postgres) through Tombstone; see common.js.
'use strict';
const { Sequelize, DataTypes, Op } = require('sequelize');
const { twin, version, adminDeleted } = require('./common');

version('sequelize');
version('pg');

function models(url) {
  const db = new Sequelize(url, { dialect: 'postgres', logging: false, pool: { max: 3 } });
  const id = { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true };
  const opts = (tableName) => ({ tableName, timestamps: false });
  const Genre = db.define('Genre', { id, label: DataTypes.TEXT }, opts('genres'));
  const Author = db.define('Author', { id, name: { type: DataTypes.TEXT, unique: true }, lock_version: DataTypes.INTEGER }, opts('authors'));
  const Book = db.define('Book', { id, author_id: DataTypes.INTEGER, genre_id: DataTypes.INTEGER, title: DataTypes.TEXT, pages: DataTypes.INTEGER }, opts('books'));
  Author.hasMany(Book, { foreignKey: 'author_id', as: 'books', onDelete: 'CASCADE' });
  Book.belongsTo(Author, { foreignKey: 'author_id', as: 'author' });
  Book.belongsTo(Genre, { foreignKey: 'genre_id', as: 'genre' });
  return { db, Genre, Author, Book };
}

twin(async (side) => {
  const { db, Author, Book } = models(side.url);
  side.expect('count before', await Author.count(), 6);

  // Instance destroy(): DELETE ... WHERE id = 1; the foreign key cascades.
  const a1 = await Author.findByPk(1);
  await a1.destroy();
  await adminDeleted(side, 'authors', [1]);
  await adminDeleted(side, 'books', [1, 2, 3]);
  side.expect('findByPk of the destroyed row', await Author.findByPk(1), null);
  side.expect('count', await Author.count(), 5);
  side.expect('findAll', (await Author.findAll({ order: [['id', 'ASC']] })).map((a) => a.id), [2, 3, 4, 5, 6]);
  side.expect('count of the cascaded children', await Book.count({ where: { author_id: 1 } }), 0);
  side.see('sum, max', [await Book.sum('pages'), await Book.max('pages')]);
  side.see('include (eager load hasMany)', (await Author.findAll({ include: [{ model: Book, as: 'books' }], order: [['id', 'ASC'], [{ model: Book, as: 'books' }, 'id', 'ASC']] }))
    .map((a) => [a.name, a.books.map((b) => b.title)]));
  side.see('include (belongsTo, required join)', (await Book.findAll({ include: [{ association: 'author', required: true }, 'genre'], order: [['id', 'ASC']] }))
    .map((b) => [b.title, b.author.name, b.genre.label]));

  // Model.destroy() returns the rows-affected count.
  side.expect('Model.destroy by id', await Book.destroy({ where: { id: 4 } }), 1);
  side.expect('Model.destroy of a deleted row', await Book.destroy({ where: { id: 4 } }), 0);

  // A rolled-back transaction undoes the destroy.
  try {
    await db.transaction(async (transaction) => {
      side.expect('destroy in a transaction', await Author.destroy({ where: { id: 2 }, transaction }), 1);
      side.expect('count in the transaction', await Author.count({ transaction }), 4);
      throw new Error('roll back');
    });
  } catch (e) {
    if (e.message !== 'roll back') throw e;
  }
  side.expect('count after rollback', await Author.count(), 5);

  // findOrCreate finds a live row, or creates one in a transaction of its
  // own (Sequelize 6 wraps that INSERT in a PL/pgSQL function in pg_temp,
  // which Tombstone must parse).
  let [row, created] = await Author.findOrCreate({ where: { name: 'author2' } });
  side.expect('findOrCreate of a live row', [row.id, created], [2, false]);
  [row, created] = await Author.findOrCreate({ where: { name: 'newcomer' }, defaults: { lock_version: 0 } });
  side.expect('findOrCreate of a new row', [row.id, created], [101, true]);
  // upsert: INSERT ... ON CONFLICT DO UPDATE.
  await Author.upsert({ id: 3, name: 'author3-renamed', lock_version: 0 });
  await Author.upsert({ id: 60, name: 'author60', lock_version: 0 });
  side.see('after upserts', (await Author.findAll({ order: [['id', 'ASC']] })).map((a) => [a.id, a.name]));

  // Raw parameterised statements (bind: extended protocol).
  const [, meta] = await db.query('DELETE FROM books WHERE id = $1', { bind: [5] });
  side.expect('raw bound DELETE rowCount', meta.rowCount, 1);
  side.expect('bulk destroy', await Book.destroy({ where: { pages: { [Op.gt]: 150 } } }), 3);
  await db.close();

  const m = models(side.md5Url);
  side.expect('MD5 login: destroy', await m.Book.destroy({ where: { id: 13 } }), 1);
  side.expect('MD5 login: findByPk', await m.Book.findByPk(13), null);
  await m.db.close();
});
