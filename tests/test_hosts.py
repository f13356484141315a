"""The app installed into other Django sites, each in its own process (own settings).

tests/hosts holds host sites shaped like real ones (issue 10: similarity assumes nothing
about its host): 4-byte, 8-byte, UUID and string primary keys, one- and two-hop project
paths, assets with and without get_absolute_url, the default staff policy and the hosts'
own, and a site with no projects at all. Each suite runs the whole path there (the shared
scenario in tests/hosts/scenario.py): migrate, upload, embed through the worker code,
search on every path against NumPy, pages, API, admin, commands, moves, file
replacements, deletions, bulk updates, a second process, and what outsiders get.

The system-check tests run ``manage.py check`` on one misconfigured SIMILARITY at a time:
each must end in the right similarity check id with a hint, never in a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.hosts.runner import run_host_suite

pytestmark = pytest.mark.integration

HOSTS = ROOT / "tests" / "hosts"


@pytest.mark.parametrize(
    ("settings_module", "suite"),
    [("tests.hosts.photos_settings", "host_photos.py"),  # 8-byte keys, album
     ("tests.hosts.int_settings", "host_int.py"),  # 4-byte keys, folder__library
     ("tests.hosts.uuid_settings", "host_uuid.py"),  # UUID keys, workspace
     ("tests.hosts.char_settings", "host_char.py"),  # string keys, board
     ("tests.hosts.sitewide_settings", "host_sitewide.py")],  # no projects
)
def test_host_suite_passes(settings_module, suite):
    run_host_suite(settings_module, suite)


PICTURES = {"ASSET_MODEL": "archive.Picture", "IMAGE_FIELD": "picture",
            "PROJECT_LOOKUP": "folder__library"}


def run_check(similarity: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.hosts.check_settings",
           "SIMILARITY_CHECK_JSON": json.dumps(similarity)}
    return subprocess.run([sys.executable, "-m", "django", "check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_well_configured_host_passes_the_checks():
    result = run_check(PICTURES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("similarity", "check_id", "named"),
    [
        ({"IMAGE_FIELD": "picture"}, "E001", "ASSET_MODEL"),  # not set at all
        ({**PICTURES, "ASSET_MODEL": "archive.Nothing"}, "E001", "archive.Nothing"),
        ({**PICTURES, "ASSET_MODEL": "Picture"}, "E001", "ASSET_MODEL"),  # no app label
        ({**PICTURES, "IMAGE_FIELD": "image"}, "E002", "IMAGE_FIELD"),  # no such field
        ({**PICTURES, "IMAGE_FIELD": "title"}, "E002", "IMAGE_FIELD"),  # not a file field
        ({**PICTURES, "PROJECT_LOOKUP": "album"}, "E004", "PROJECT_LOOKUP"),
        ({**PICTURES, "PROJECT_LOOKUP": "folder__name"}, "E004", "PROJECT_LOOKUP"),
        ({**PICTURES, "PROJECT_MODEL": "archive.Board"}, "E004", "PROJECT_LOOKUP"),
        ({**PICTURES, "IS_IMAGE": {"kind": "image"}}, "E008", "IS_IMAGE"),  # no `kind` field
    ],
    ids=["missing-asset-model", "unknown-asset-model", "malformed-asset-model",
         "unknown-image-field", "image-field-not-a-file", "unknown-project-lookup",
         "project-lookup-not-a-relation", "project-model-not-at-lookup", "is-image-no-kind"],
)
def test_each_misconfiguration_is_one_check_error_with_a_hint(similarity, check_id, named):
    result = run_check(similarity)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output[-4000:]
    assert result.returncode != 0, output
    lines = output.splitlines()
    ours = [i for i, line in enumerate(lines) if f"(similarity.{check_id})" in line]
    assert ours, output
    assert named in lines[ours[0]], output
    assert lines[ours[0] + 1].strip().startswith("HINT:"), output
