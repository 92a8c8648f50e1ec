\pset pager off
\set ON_ERROR_STOP 1
DELETE FROM authors WHERE id = 1;
SELECT * FROM authors WHERE id = 1;
SELECT id, name FROM authors ORDER BY id;
SELECT count(*), sum(pages), max(pages) FROM books;
SELECT a.name, b.title FROM authors a JOIN books b ON b.author_id = a.id ORDER BY b.id;
SELECT g.label, count(b.id) FROM genres g LEFT JOIN books b ON b.genre_id = g.id GROUP BY 1 ORDER BY 1;
BEGIN;
DELETE FROM authors WHERE id = 2;
SELECT count(*) FROM authors;
ROLLBACK;
SELECT count(*) FROM authors;
PREPARE del_book(int) AS DELETE FROM books WHERE id = $1;
EXECUTE del_book(4);
EXECUTE del_book(4);
DELETE FROM books WHERE pages > 150;
DELETE FROM books WHERE id = 5 \; DELETE FROM books WHERE id IN (6, 7) \; SELECT count(*) FROM books;
\d authors
\d books
\dt
\di
\d+ genres
\copy books (id, title) to stdout
\copy (SELECT name FROM authors ORDER BY 1) to stdout with csv
\copy books (id, author_id, genre_id, title, pages) from stdin
201	2	1	copied	7
\.
SELECT title FROM books WHERE id = 201;
