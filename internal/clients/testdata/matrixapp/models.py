"""Unmanaged models on the schema internal/clients loads."""
from django.db import models


class Genre(models.Model):
    label = models.TextField()

    class Meta:
        db_table = "genres"
        managed = False


class Author(models.Model):
    name = models.TextField(unique=True)
    lock_version = models.IntegerField(default=0)

    class Meta:
        db_table = "authors"
        managed = False


class Book(models.Model):
    author = models.ForeignKey(Author, on_delete=models.CASCADE, related_name="books")
    genre = models.ForeignKey(Genre, on_delete=models.PROTECT, null=True)
    title = models.TextField()
    pages = models.IntegerField()

    class Meta:
        db_table = "books"
        managed = False
