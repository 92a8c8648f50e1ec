"""psycopg2 (Debian python3-psycopg2) through Tombstone; see matrix_common.py."""
import io
import threading
import time

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from matrix_common import twin, version

version("psycopg2", psycopg2.__version__.split()[0])
_libpq = psycopg2.extensions.libpq_version()
version("libpq", f"{_libpq // 10000}.{_libpq % 10000}")


def scenario(side):
    conn = psycopg2.connect(side.url)
    cur = conn.cursor()

    def rows(sql, args=None):
        cur.execute(sql, args)
        return [list(r) for r in cur.fetchall()]

    side.expect("count before", rows("SELECT count(*) FROM authors"), [[6]])
    # Parameterised delete; psycopg2 reads the tag's count into rowcount.
    cur.execute("DELETE FROM authors WHERE id = %s", (1,))
    side.expect("DELETE rowcount", [cur.statusmessage, cur.rowcount], ["DELETE 1", 1])
    conn.commit()
    side.admin_deleted("authors", [1])
    side.admin_deleted("books", [1, 2, 3])
    side.expect("by id", rows("SELECT * FROM authors WHERE id = %s", (1,)), [])
    side.see("list", rows("SELECT id, name FROM authors ORDER BY id"))
    side.expect("count", rows("SELECT count(*) FROM authors"), [[5]])
    side.see("aggregates", rows("SELECT count(*), sum(pages), avg(pages)::float8 FROM books"))
    side.see("join", rows("SELECT a.name, b.title FROM authors a JOIN books b ON b.author_id = a.id ORDER BY b.id"))
    side.see("left join", rows("SELECT a.name, count(b.id) FROM authors a LEFT JOIN books b ON b.author_id = a.id AND b.pages > 50 GROUP BY a.name ORDER BY 1"))
    conn.commit()

    # A rollback undoes the delete.
    cur.execute("DELETE FROM authors WHERE id = 2")
    side.expect("DELETE in a transaction", cur.rowcount, 1)
    side.expect("count in the transaction", rows("SELECT count(*) FROM authors"), [[4]])
    conn.rollback()
    side.expect("count after rollback", rows("SELECT count(*) FROM authors"), [[5]])

    # SQL-level prepared statement, executed twice.
    cur.execute("PREPARE del_book(int) AS DELETE FROM books WHERE id = $1")
    cur.execute("EXECUTE del_book(%s)", (4,))
    side.expect("EXECUTE prepared DELETE", cur.rowcount, 1)
    cur.execute("EXECUTE del_book(%s)", (4,))
    side.expect("EXECUTE prepared DELETE of a deleted row", cur.rowcount, 0)
    # Bulk delete with executemany and with one statement.
    cur.executemany("DELETE FROM books WHERE id = %s", [(5,), (6,)])
    side.expect("executemany DELETE total", cur.rowcount, 2)  # psycopg2 sums the executions
    cur.execute("DELETE FROM books WHERE pages > %s", (150,))
    side.expect("bulk DELETE", cur.rowcount, 3)
    conn.commit()

    # A named (server-side) cursor: DECLARE ... CURSOR, FETCH in batches.
    named = conn.cursor(name="live_books")
    named.itersize = 2
    named.execute("SELECT id FROM books WHERE author_id <= %s ORDER BY id", (4,))
    side.expect("named cursor", [r[0] for r in named], [7, 8, 9, 10, 11, 12])
    named.close()
    conn.commit()

    # COPY out of a soft-delete table and of a query, and COPY in.
    out = io.StringIO()
    cur.copy_expert("COPY books (id, title) TO STDOUT", out)
    side.see("COPY table TO STDOUT", out.getvalue())
    out = io.StringIO()
    cur.copy_expert("COPY (SELECT a.name, count(*) FROM authors a JOIN books b ON b.author_id = a.id GROUP BY 1 ORDER BY 1) TO STDOUT WITH (FORMAT csv)", out)
    side.see("COPY query TO STDOUT", out.getvalue())
    cur.copy_expert("COPY books (id, author_id, genre_id, title, pages) FROM STDIN", io.StringIO("201\t2\t1\tcopied\t7\n"))
    side.expect("COPY FROM rowcount", cur.rowcount, 1)
    conn.commit()
    side.expect("copied row visible", rows("SELECT title FROM books WHERE id = 201"), [["copied"]])

    # Cancel: conn.cancel() from another thread stops a running statement.
    def cancel_soon():
        time.sleep(0.5)
        conn.cancel()

    threading.Thread(target=cancel_soon).start()
    started = time.monotonic()
    try:
        cur.execute("SELECT pg_sleep(20) FROM authors WHERE id = 2")
        side.expect("cancel", "statement finished", "QueryCanceled")
    except psycopg2.errors.QueryCanceled:
        side.expect("cancel", "QueryCanceled", "QueryCanceled")
    conn.rollback()
    side.expect("cancelled within 10s", time.monotonic() - started < 10, True)
    side.expect("connection usable after cancel", rows("SELECT count(*) FROM authors"), [[5]])
    conn.close()

    # MD5 login, and a delete through it.
    m = psycopg2.connect(side.md5_url)
    mc = m.cursor()
    mc.execute("DELETE FROM books WHERE id = %s", (13,))
    side.expect("MD5 login: DELETE", mc.rowcount, 1)
    m.commit()
    m.close()


twin(scenario)
