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


def test_a_model_folder_given_once_is_remembered(tmp_path, monkeypatch, settings):
    """Issue 24: restarting without SIMILARITY_MODEL no longer goes back to the hub model."""
    from io import StringIO

    from assetsite import settings as site_settings

    memory = tmp_path / "var" / "similarity-model"
    settings.MODEL_MEMORY = memory
    folder = tmp_path / "tiny"
    folder.mkdir()
    command = Command(stdout=StringIO())
    monkeypatch.setenv("SIMILARITY_MODEL", str(folder))
    command._remember_model()
    assert memory.read_text().strip() == str(folder.resolve())
    assert "remembered in" in command.stdout.getvalue()
    # the next run, without the variable: the settings read the folder back
    monkeypatch.delenv("SIMILARITY_MODEL")
    monkeypatch.setattr(site_settings, "MODEL_MEMORY", memory)
    assert site_settings._model_name() == str(folder.resolve())
    later = Command(stdout=StringIO())
    later._remember_model()
    assert f"Model: {folder.resolve()} (remembered in {memory} from an earlier run" in \
        later.stdout.getvalue()
    # a hub id named explicitly forgets it
    monkeypatch.setenv("SIMILARITY_MODEL", "facebook/dinov2-base")
    Command(stdout=StringIO())._remember_model()
    assert not memory.exists()
    monkeypatch.delenv("SIMILARITY_MODEL")
    assert site_settings._model_name() == site_settings.HUB_MODEL


def test_the_demo_login_is_printed_boxed():
    from io import StringIO

    command = Command(stdout=StringIO())
    command._login_lines = ["Demo login: username 'demo', password 'x'", "(shown once)"]
    command._print_login("http://127.0.0.1:8000/")
    lines = command.stdout.getvalue().splitlines()
    assert lines[0].startswith("+--") and lines[-1] == lines[0]
    assert lines[1].startswith("| Open http://127.0.0.1:8000/") and lines[1].endswith(" |")
    assert len({len(line) for line in lines}) == 1  # a box: every line the same width
