"""The code stays ruff-clean, ``similarity`` keeps its layers (and never imports the host's
apps), and the import paths hosts were given keep working."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean():
    # The venv's own ruff (bin/run-tests runs the venv's python without activating it).
    assert importlib.util.find_spec("ruff"), "ruff is part of the [test] extra"
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_similarity_imports_nothing_from_the_site():
    offenders = []
    for path in (ROOT / "similarity").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in {"datasets", "assetsite", "tests"}:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert offenders == []


def test_import_contracts_hold():
    """The layers of ``similarity`` (pyproject.toml's import-linter contracts): imports
    only point down, the doors never import each other, no web framework below them,
    nothing of the site, no circles (lazy imports included)."""
    lint = Path(sys.executable).parent / "lint-imports"
    assert lint.exists(), "import-linter is part of the [test] extra"
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


#: Below the doors (views, api, templatetags, admin, contrib, http): the layers that hold
#: the logic every door shares. They raise ``similarity.errors.NotFound``, never Http404,
#: and build links only through ``similarity.host.links``.
BELOW_THE_DOORS = ["conf.py", "errors.py", "locks.py", "models", "host", "vectors", "search",
                   "embedding", "insight", "watch", "actions"]
HTTP_MODULES = {"django.http", "django.shortcuts", "django.urls"}


def test_nothing_below_the_doors_speaks_http():
    offenders = []
    for part in BELOW_THE_DOORS:
        path = ROOT / "similarity" / part
        for source in ([path] if path.is_file() else sorted(path.rglob("*.py"))):
            relative = source.relative_to(ROOT)
            links = relative.as_posix() == "similarity/host/links.py"  # the one reverse()
            tree = ast.parse(source.read_text(), filename=str(source))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module in HTTP_MODULES and not links:
                    offenders.append(f"{relative}:{node.lineno} imports {node.module}")
                elif isinstance(node, ast.Import):
                    offenders += [f"{relative}:{node.lineno} imports {alias.name}"
                                  for alias in node.names if alias.name in HTTP_MODULES]
                elif isinstance(node, ast.Name) and node.id == "Http404":
                    offenders.append(f"{relative}:{node.lineno} uses Http404")
                elif (isinstance(node, ast.Call) and not links
                      and getattr(node.func, "id", getattr(node.func, "attr", "")) == "reverse"):
                    offenders.append(f"{relative}:{node.lineno} calls reverse()")
    assert offenders == []


#: Paths the README and hosts used before the packages existed, and where each name lives
#: now: each still imports (warning), handing out the very same objects.
MOVED = {
    "similarity.access": ("similarity.host.access", ["AccessPolicy", "StaffOnlyAccess"]),
    "similarity.registry": ("similarity.host.models", ["get_asset_model", "image_assets"]),
    "similarity.links": ("similarity.host.links", ["results_url", "asset_url"]),
    "similarity.readiness": ("similarity.embedding.readiness", ["get_readiness", "refresh"]),
    "similarity.embedders": ("similarity.vectors.model_keys", ["model_problem",
                                                               "current_model_key"]),
    "similarity.images": ("similarity.vectors.images", ["open_image", "ImageDecodeError"]),
    "similarity.gaps": ("similarity.search.gaps", ["largest_gap", "trim"]),
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_moved_import_paths_still_work_and_warn(old):
    new, names = MOVED[old]
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=old.replace(".", r"\.")):
        module = importlib.import_module(old)
    home = importlib.import_module(new)
    for name in names:
        assert getattr(module, name) is getattr(home, name)


def test_documented_public_paths_import():
    """What the README tells hosts to import, at the paths it names."""
    from django.utils.module_loading import import_string

    for path in ["similarity.search.find_similar", "similarity.search.find_similar_to_selection",
                 "similarity.search.selection_vector", "similarity.actions.BulkAction",
                 "similarity.actions.TagAction", "similarity.models.Embedding",
                 "similarity.models.SavedSearch", "similarity.admin.SimilarityAssetAdminMixin",
                 "similarity.admin.extend_admin", "similarity.testing.make_dinov2_checkpoint",
                 "similarity.tasks.schedule_embedding", "similarity.tasks.reindex_project",
                 "similarity.tasks.sweep", "similarity.tasks.embed_project",
                 "similarity.tasks.embed_query_image", "similarity.insight_tasks.run_insight",
                 "similarity.watch.check_new", "similarity.host.access.AccessPolicy",
                 "similarity.contrib.wagtail.access.WagtailImageAccess"]:
        assert callable(import_string(path)), path
    with pytest.warns(DeprecationWarning):  # a host's ACCESS_POLICY naming the old path
        sys.modules.pop("similarity.access", None)
        assert import_string("similarity.access.StaffOnlyAccess") is import_string(
            "similarity.host.access.StaffOnlyAccess")
