"""Helpers shared by the Python clients of the matrix.

A scenario runs once through Tombstone (the soft-delete database) and once
directly against the twin whose deletes are real; what each side saw is
recorded with see() and the two records must be equal. expect() states
what the answer must be on both sides.
"""
import json
import os
import sys
import traceback
from urllib.parse import unquote, urlparse

import psycopg2


class Side:
    def __init__(self, name, url, md5_url):
        self.name = name  # "soft" (through Tombstone) or "real" (direct)
        self.url = url  # SCRAM role
        self.md5_url = md5_url  # MD5 role, same database
        self.seen = []

    @property
    def soft(self):
        return self.name == "soft"

    def see(self, label, value):
        self.seen.append((label, json.dumps(value, default=str)))
        return value

    def expect(self, label, got, want):
        if got != want:
            raise AssertionError(f"{self.name}: {label}: got {got!r}, want {want!r}")
        print(f"ok: {self.name}: {label}", flush=True)
        return self.see(label, got)

    def admin_deleted(self, table, ids):
        """On the soft side, read as the privileged role, directly, that the
        rows are still on disk with deleted_at set."""
        if not self.soft:
            return
        with psycopg2.connect(os.environ["TS_ADMIN_SOFT_URL"]) as c, c.cursor() as cur:
            cur.execute(f"SELECT id, deleted_at IS NOT NULL FROM {table} WHERE id = ANY(%s) ORDER BY id", (ids,))
            got = cur.fetchall()
        c.close()
        if got != [(i, True) for i in ids]:
            raise AssertionError(f"{table} {ids} must be on disk with deleted_at set; on disk: {got}")
        print(f"ok: soft: {table} {ids} kept on disk with deleted_at set", flush=True)


def url_parts(url):
    """host, port, user, password, dbname of a postgres:// URL."""
    u = urlparse(url)
    return u.hostname, u.port, unquote(u.username), unquote(u.password or ""), u.path.lstrip("/")


def version(name, value):
    print(f"version: {name} {value}", flush=True)


def twin(scenario):
    """Run scenario on both sides and compare what they saw."""
    version("python", sys.version.split()[0])
    soft = Side("soft", os.environ["TS_SOFT_URL"], os.environ["TS_SOFT_MD5_URL"])
    real = Side("real", os.environ["TS_REAL_URL"], os.environ["TS_REAL_MD5_URL"])
    try:
        scenario(soft)
        scenario(real)
        bad = []
        for i in range(max(len(soft.seen), len(real.seen))):
            s = soft.seen[i] if i < len(soft.seen) else ("(nothing)", "")
            r = real.seen[i] if i < len(real.seen) else ("(nothing)", "")
            if s != r:
                bad.append(f"{s[0]}: through Tombstone {s[1]}, direct {r[0]} {r[1]}")
        if bad:
            raise AssertionError("through Tombstone and direct differ:\n  " + "\n  ".join(bad))
        print(f"ok: through Tombstone and direct agree on {len(soft.seen)} observations", flush=True)
    except Exception:
        print("FAIL: " + traceback.format_exc(), flush=True)
        sys.exit(1)
