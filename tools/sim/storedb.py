"""Read-only queries on a bbt store for the county scripts: an SQLite file or a
postgresql:// URI (through psql; the schema is the same on both)."""
import os
import shutil
import sqlite3
import subprocess


class StoreError(Exception):
    pass


def _psql():
    for p in ("/usr/lib/postgresql/15/bin/psql", shutil.which("psql") or ""):
        if p and os.access(p, os.X_OK):
            return p
    raise StoreError("psql is not installed (postgresql-client-15)")


def _psql_rows(location, sql):
    """The rows of SQL on the PostgreSQL store at LOCATION, each a list of strings."""
    r = subprocess.run([_psql(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", location, "-c", sql],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise StoreError(r.stderr.strip())
    return [line.split("|") for line in r.stdout.splitlines() if line]


class Store:
    def __init__(self, location):
        self.location = location
        self.pg = location.startswith(("postgresql://", "postgres://"))
        if not self.pg:
            try:
                self.db = sqlite3.connect(f"file:{location}?mode=ro", uri=True, timeout=5)
            except sqlite3.Error as e:
                raise StoreError(str(e))

    def one(self, sql):
        """The first column of the first row of SQL, as an int."""
        if self.pg:
            rows = _psql_rows(self.location, sql)
            return int(rows[0][0]) if rows else None
        try:
            row = self.db.execute(sql).fetchone()
        except sqlite3.Error as e:
            raise StoreError(str(e))
        return row[0] if row else None

    def row(self, sql):
        """The first row of SQL as a tuple of strings (PostgreSQL) or values (SQLite)."""
        if self.pg:
            rows = _psql_rows(self.location, sql)
            return tuple(rows[0]) if rows else None
        return self.db.execute(sql).fetchone()

    def rows(self, sql):
        """Every row of SQL, each a tuple of strings (PostgreSQL) or values (SQLite)."""
        if self.pg:
            return [tuple(r) for r in _psql_rows(self.location, sql)]
        try:
            return self.db.execute(sql).fetchall()
        except sqlite3.Error as e:
            raise StoreError(str(e))

    def close(self):
        if not self.pg:
            self.db.close()
