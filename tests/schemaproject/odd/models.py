"""Models of a schema beyond plain tables; the rest is SQL in migration 0002 (see there)."""

from django.db import models


class Note(models.Model):
    """A plain table, kept in sync with a full-text index by its own triggers."""

    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict)
    blob = models.BinaryField(default=b"")
    created = models.DateTimeField(auto_now_add=True)


class NoteTitle(models.Model):
    """A view (odd_note_view) behind an unmanaged model."""

    title = models.CharField(max_length=200)

    class Meta:
        managed = False
        db_table = "odd_note_view"


class Membership(models.Model):
    """A composite primary key (Django 5.2+)."""

    pk = models.CompositePrimaryKey("team", "person")
    team = models.IntegerField()
    person = models.CharField(max_length=50)
    role = models.CharField(max_length=50)


class Wide(models.Model):
    """More columns than an SQLite function takes arguments (127) in pairs."""

    for _number in range(70):
        locals()[f"c{_number}"] = models.IntegerField(default=_number)
    del _number
