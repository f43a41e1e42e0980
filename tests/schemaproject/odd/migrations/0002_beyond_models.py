"""What real schemas hold beside models' tables, on each backend.

Both: a view behind an unmanaged model (odd_note_view), a table without a primary key
(odd_log). SQLite: an FTS5 index kept in sync with odd_note by triggers of its own
(odd_note_fts, external content, as CMS search indexes are), and an R*Tree
(odd_place_rtree). PostgreSQL: the index as a plain table kept by a trigger, a
materialized view, a partitioned table, a table in another schema, a table owned by
another role (when the server's user is no superuser and a member of djfire_odd_owner:
tests/djfire/test_schemas.py makes it so), and a table
whose capture trigger cannot be created (a constraint trigger already has its name).
"""

from django.db import migrations

BOTH = [
    "CREATE VIEW odd_note_view AS SELECT id, title FROM odd_note",
    "CREATE TABLE odd_log (line text, n integer)",
]
SQLITE = [
    "CREATE VIRTUAL TABLE odd_note_fts USING fts5(title, body, content='odd_note', "
    "content_rowid='id')",
    "CREATE TRIGGER odd_note_ai AFTER INSERT ON odd_note BEGIN "
    "INSERT INTO odd_note_fts (rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "CREATE TRIGGER odd_note_ad AFTER DELETE ON odd_note BEGIN "
    "INSERT INTO odd_note_fts (odd_note_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); END",
    "CREATE TRIGGER odd_note_au AFTER UPDATE ON odd_note BEGIN "
    "INSERT INTO odd_note_fts (odd_note_fts, rowid, title, body) "
    "VALUES ('delete', old.id, old.title, old.body); "
    "INSERT INTO odd_note_fts (rowid, title, body) VALUES (new.id, new.title, new.body); END",
    "CREATE VIRTUAL TABLE odd_place_rtree USING rtree(id, min_x, max_x, min_y, max_y)",
]
POSTGRES = [
    "CREATE TABLE odd_note_fts (note_id integer PRIMARY KEY, document tsvector)",
    """CREATE FUNCTION odd_note_index() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
         INSERT INTO odd_note_fts VALUES (NEW.id, to_tsvector('simple', NEW.title))
         ON CONFLICT (note_id) DO UPDATE SET document = EXCLUDED.document;
         RETURN NULL; END $$""",
    "CREATE TRIGGER odd_note_index AFTER INSERT OR UPDATE ON odd_note "
    "FOR EACH ROW EXECUTE FUNCTION odd_note_index()",
    "CREATE MATERIALIZED VIEW odd_note_totals AS SELECT count(*) AS notes FROM odd_note",
    "CREATE TABLE odd_event (id integer NOT NULL, kind text NOT NULL, payload jsonb, "
    "PRIMARY KEY (id, kind)) PARTITION BY LIST (kind)",
    "CREATE TABLE odd_event_a PARTITION OF odd_event FOR VALUES IN ('a')",
    "CREATE TABLE odd_event_b PARTITION OF odd_event FOR VALUES IN ('b')",
    "CREATE SCHEMA odd_extra",
    "CREATE TABLE odd_extra.tag (id serial PRIMARY KEY, name text NOT NULL)",
    "CREATE TABLE odd_owned (id serial PRIMARY KEY, name text NOT NULL)",
    "CREATE TABLE odd_clash (id serial PRIMARY KEY, n integer)",
    "CREATE FUNCTION odd_nothing() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RETURN NULL; END $$",
    "CREATE CONSTRAINT TRIGGER djfire_capture AFTER INSERT ON odd_clash "
    "FOR EACH ROW EXECUTE FUNCTION odd_nothing()",
]
# odd_owned to another role, with the rights to write it but not to put a trigger on it:
# the server's user (no superuser) gives the table away, then its membership in that role.
POSTGRES_OWNED = [
    "GRANT CREATE ON SCHEMA public TO djfire_odd_owner",
    "ALTER TABLE odd_owned OWNER TO djfire_odd_owner",
    "SET ROLE djfire_odd_owner",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON odd_owned TO {user}",
    "GRANT USAGE ON SEQUENCE odd_owned_id_seq TO {user}",
    "RESET ROLE",
    "REVOKE djfire_odd_owner FROM {user}",
]


def forwards(apps, schema_editor):
    connection = schema_editor.connection
    statements = BOTH + (SQLITE if connection.vendor == "sqlite" else POSTGRES)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT current_user, CASE WHEN NOT rolsuper AND EXISTS (SELECT FROM pg_roles "
                "WHERE rolname = 'djfire_odd_owner') THEN pg_has_role('djfire_odd_owner', "
                "'MEMBER') ELSE false END FROM pg_roles WHERE rolname = current_user"
            )
            user, member = cursor.fetchone()
            if member:
                quoted = connection.ops.quote_name(user)
                statements += [s.format(user=quoted) for s in POSTGRES_OWNED]
        for statement in statements:
            cursor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("odd", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
