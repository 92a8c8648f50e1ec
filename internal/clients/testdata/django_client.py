"""The Django ORM (Debian python3-django, on psycopg2) through Tombstone;
see matrix_common.py. Models are in matrixapp/models.py, unmanaged, on the schema
the Go driver loads; each side of the comparison is a database alias."""
import os

import django
from django.conf import settings

from matrix_common import twin, url_parts, version


def alias(url):
    host, port, user, password, name = url_parts(url)
    return {"ENGINE": "django.db.backends.postgresql", "HOST": host, "PORT": port,
            "USER": user, "PASSWORD": password, "NAME": name}


settings.configure(
    DATABASES={
        "default": alias(os.environ["TS_SOFT_URL"]),
        os.environ["TS_SOFT_URL"]: alias(os.environ["TS_SOFT_URL"]),
        os.environ["TS_REAL_URL"]: alias(os.environ["TS_REAL_URL"]),
        os.environ["TS_SOFT_MD5_URL"]: alias(os.environ["TS_SOFT_MD5_URL"]),
        os.environ["TS_REAL_MD5_URL"]: alias(os.environ["TS_REAL_MD5_URL"]),
    },
    INSTALLED_APPS=["matrixapp"],
    USE_TZ=False,
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
)
django.setup()

from django.db import connections, transaction  # noqa: E402 (needs setup)
from django.db.models import Count, Max, Sum  # noqa: E402

version("django", django.get_version())
import psycopg2  # noqa: E402

version("psycopg2", psycopg2.__version__.split()[0])

from matrixapp.models import Author, Book  # noqa: E402


class Rollback(Exception):
    pass


def scenario(side):
    db = side.url
    authors, books = Author.objects.using(db), Book.objects.using(db)
    side.expect("count before", authors.count(), 6)

    # Model.delete(): the collector deletes the CASCADE children itself
    # (DELETE FROM books WHERE author_id IN (...)), then the row, and
    # returns what the command tags counted.
    side.expect("Model.delete() with collected cascade", authors.get(pk=1).delete(),
                (4, {"matrixapp.Book": 3, "matrixapp.Author": 1}))
    side.admin_deleted("authors", [1])
    side.admin_deleted("books", [1, 2, 3])
    side.expect("filter by pk", list(authors.filter(pk=1)), [])
    side.expect("get of the deleted row raises DoesNotExist",
                _raises(lambda: authors.get(pk=1), Author.DoesNotExist), True)
    side.expect("list", list(authors.order_by("id").values_list("id", flat=True)), [2, 3, 4, 5, 6])
    side.expect("count", authors.count(), 5)
    side.see("aggregate", books.aggregate(n=Count("id"), s=Sum("pages"), hi=Max("pages")))
    side.see("annotate (join, GROUP BY)", list(authors.annotate(n=Count("books")).order_by("id").values_list("name", "n")))
    side.see("select_related", [(b.title, b.author.name, b.genre.label) for b in books.select_related("author", "genre").order_by("id")])
    side.see("prefetch_related", [(a.name, [b.title for b in a.books.all()]) for a in authors.prefetch_related("books").order_by("id")])
    side.see("filter across the relation", list(books.filter(author__name="author2").values_list("id", flat=True)))

    # QuerySet.delete() counts.
    side.expect("QuerySet.delete() of one row", books.filter(pk=4).delete(), (1, {"matrixapp.Book": 1}))
    side.expect("QuerySet.delete() of a deleted row", books.filter(pk=4).delete(), (0, {}))
    side.expect("bulk QuerySet.delete()", books.filter(pages__gt=150).delete(), (3, {"matrixapp.Book": 3}))

    # A rolled-back atomic block undoes the delete.
    try:
        with transaction.atomic(using=db):
            side.expect("delete in atomic()", authors.filter(pk=2).delete(), (3, {"matrixapp.Book": 2, "matrixapp.Author": 1}))
            side.expect("count in atomic()", authors.count(), 4)
            raise Rollback
    except Rollback:
        pass
    side.expect("count after rollback", authors.count(), 5)
    side.expect("children back after rollback", books.filter(author_id=2).count(), 2)

    # get_or_create finds a live row or creates one.
    obj, created = authors.get_or_create(name="author2")
    side.expect("get_or_create of a live row", (obj.pk, created), (2, False))
    obj, created = authors.get_or_create(name="newcomer")
    side.expect("get_or_create of a new row", (obj.pk, created), (101, True))

    # Raw parameterised statement.
    with connections[db].cursor() as cur:
        cur.execute("DELETE FROM books WHERE id = %s", [5])
        side.expect("raw parameterised DELETE rowcount", cur.rowcount, 1)

    m = Book.objects.using(side.md5_url)
    side.expect("MD5 login: QuerySet.delete()", m.filter(pk=13).delete(), (1, {"matrixapp.Book": 1}))
    side.expect("MD5 login: count", m.count(), 9)
    for c in connections.all():
        c.close()


def _raises(fn, exc):
    try:
        fn()
    except exc:
        return True
    return False


twin(scenario)
