"""Keep trytond's PostgreSQL test template databases in step with the code.

With ``DB_CACHE=postgresql://...`` trytond caches each activated module set as
a template database named ``test-<hash of the module names>`` and creates every
test database from it (``CREATE DATABASE ... TEMPLATE``: about 2 s, against
5-10 s for a pg_restore).  The name does not change with the code, so a
template is labelled with the content hash of the addons (a database comment):

- ``prune HASH``: drop the templates not labelled HASH (stale schema);
- ``label HASH``: label the templates the run has just built.
"""

import sys

import psycopg
from psycopg import sql

DSN = 'postgresql://postgres@127.0.0.1:5432/postgres'
TEMPLATES = """
    SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '')
    FROM pg_database WHERE datname LIKE 'test-%'
"""


def main(action: str, content_hash: str) -> None:
    with psycopg.connect(DSN, autocommit=True) as connection:
        for name, label in connection.execute(TEMPLATES).fetchall():
            database = sql.Identifier(name)
            if action == 'prune' and label != content_hash:
                connection.execute(sql.SQL('DROP DATABASE {}').format(database))
            elif action == 'label' and label != content_hash:
                connection.execute(
                    sql.SQL('COMMENT ON DATABASE {} IS {}').format(
                        database, sql.Literal(content_hash)
                    )
                )


if __name__ == '__main__':
    if len(sys.argv) != 3 or sys.argv[1] not in ('prune', 'label'):
        sys.exit('usage: pg_test_templates.py prune|label HASH')
    main(sys.argv[1], sys.argv[2])
