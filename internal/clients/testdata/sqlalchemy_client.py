"""SQLAlchemy (Debian python3-sqlalchemy, on psycopg2) through Tombstone;
see matrix_common.py."""
import psycopg2
import sqlalchemy
from sqlalchemy import Column, ForeignKey, Integer, Text, create_engine, func, select, text
from sqlalchemy.orm import Session, declarative_base, joinedload, relationship, selectinload

from matrix_common import twin, version

version("sqlalchemy", sqlalchemy.__version__)
version("psycopg2", psycopg2.__version__.split()[0])

Base = declarative_base()


class Genre(Base):
    __tablename__ = "genres"
    id = Column(Integer, primary_key=True)
    label = Column(Text, nullable=False)


class Author(Base):
    __tablename__ = "authors"
    id = Column(Integer, primary_key=True)
    name = Column(Text, nullable=False, unique=True)
    lock_version = Column(Integer, nullable=False, default=0)
    # passive_deletes: the ORM leaves the children to the foreign key's ON
    # DELETE CASCADE, which Tombstone carries out as soft deletes.
    books = relationship("Book", back_populates="author", order_by="Book.id",
                         cascade="all, delete-orphan", passive_deletes=True)


class Book(Base):
    __tablename__ = "books"
    id = Column(Integer, primary_key=True)
    author_id = Column(Integer, ForeignKey("authors.id", ondelete="CASCADE"), nullable=False)
    genre_id = Column(Integer, ForeignKey("genres.id"))
    title = Column(Text, nullable=False)
    pages = Column(Integer, nullable=False)
    author = relationship("Author", back_populates="books")
    genre = relationship("Genre")


def scenario(side):
    engine = create_engine(side.url.replace("postgres://", "postgresql+psycopg2://", 1), future=True)
    with Session(engine, future=True) as s:
        side.expect("count before", s.scalar(select(func.count()).select_from(Author)), 6)
        # session.delete: DELETE ... WHERE id = %(id)s, and the ORM checks
        # that exactly one row was deleted (StaleDataError otherwise).
        s.delete(s.get(Author, 1))
        s.commit()
        side.admin_deleted("authors", [1])
        side.admin_deleted("books", [1, 2, 3])
        s.expire_all()
        side.expect("get of the deleted row", s.get(Author, 1), None)
        side.expect("list", s.scalars(select(Author.id).order_by(Author.id)).all(), [2, 3, 4, 5, 6])
        side.expect("count", s.scalar(select(func.count()).select_from(Author)), 5)
        side.see("aggregates", list(s.execute(select(func.count(Book.id), func.sum(Book.pages), func.max(Book.pages))).one()))
        side.see("join", [list(r) for r in s.execute(select(Author.name, Book.title).join(Book.author).order_by(Book.id))])
        side.see("outer join, GROUP BY", [list(r) for r in s.execute(
            select(Genre.label, func.count(Book.id)).outerjoin(Book, Book.genre_id == Genre.id).group_by(Genre.label).order_by(Genre.label))])
        side.see("joinedload", [(a.name, [b.title for b in a.books]) for a in
                                s.scalars(select(Author).options(joinedload(Author.books)).order_by(Author.id)).unique()])
        side.see("selectinload", [(a.name, [b.title for b in a.books]) for a in
                                  s.scalars(select(Author).options(selectinload(Author.books)).order_by(Author.id))])
        side.see("joinedload many-to-one", [(b.title, b.author.name, b.genre.label) for b in
                                            s.scalars(select(Book).options(joinedload(Book.author), joinedload(Book.genre)).order_by(Book.id))])

        # query.delete() returns the rows-affected count.
        side.expect("query.delete() of one row", s.query(Book).filter(Book.id == 4).delete(synchronize_session=False), 1)
        side.expect("query.delete() of a deleted row", s.query(Book).filter(Book.id == 4).delete(synchronize_session=False), 0)
        side.expect("bulk query.delete()", s.query(Book).filter(Book.pages > 150).delete(synchronize_session=False), 3)
        s.commit()

        # A rollback undoes the delete.
        s.delete(s.get(Author, 2))
        s.flush()
        side.expect("count after the flushed delete", s.scalar(select(func.count()).select_from(Author)), 4)
        s.rollback()
        side.expect("count after rollback", s.scalar(select(func.count()).select_from(Author)), 5)
        side.expect("children after rollback", s.scalar(select(func.count()).select_from(Book).where(Book.author_id == 2)), 2)

        # Bound parameters in a text() statement.
        r = s.execute(text("DELETE FROM books WHERE id = :id"), {"id": 5})
        side.expect("text() DELETE rowcount", r.rowcount, 1)
        s.commit()
    engine.dispose()

    m = create_engine(side.md5_url.replace("postgres://", "postgresql+psycopg2://", 1), future=True)
    with Session(m, future=True) as s:
        s.delete(s.get(Book, 13))
        s.commit()
        side.expect("MD5 login: session.delete", s.get(Book, 13), None)
    m.dispose()


twin(scenario)
