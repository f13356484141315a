"""serve's start-up checks (the full start is in test_integration.py)."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from assetsite.management.commands.serve import Command


class NoVectorCursor:
    def __init__(self):
        self.sql = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, params=None):
        self.sql = sql

    def fetchone(self):
        return ("PostgreSQL 16.4 on x86_64",) if "version()" in self.sql else None


def test_serve_refuses_a_database_url_server_without_pgvector(monkeypatch):
    from assetsite.management.commands import serve

    monkeypatch.setenv("DATABASE_URL", "postgres://user@db.example/assets")
    monkeypatch.setattr(serve.connection, "cursor", NoVectorCursor)
    with pytest.raises(CommandError, match=r"has no pgvector extension.*unset DATABASE_URL"):
        Command()._check_database()


@pytest.mark.django_db
def test_serve_accepts_the_embedded_database():
    from io import StringIO

    out = StringIO()
    Command(stdout=out)._check_database()
    assert "with pgvector via embedded PostgreSQL" in out.getvalue()
