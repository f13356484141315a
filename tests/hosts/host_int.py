"""4-byte AutoField keys; pictures -> folder -> library (two hops); staff-only default."""

import pytest

from tests.hosts.profiles import PictureHost
from tests.hosts.scenario import *  # noqa: F403 (the shared host scenario)


@pytest.fixture
def host():
    return PictureHost()


def test_moving_a_folder_moves_its_pictures_to_the_other_library(
        host, make_project, django_capture_on_commit_callbacks):
    """A change one hop up (no signal on the asset): search follows at once, sweep repairs."""
    from similarity import tasks
    from similarity.embedding import readiness
    from tests.hosts.scenario import ranked_ids

    library, pictures = make_project(4)
    other, others = make_project(2)
    extra = library.folders.create(name="to move")
    moved = pictures[:2]
    type(moved[0]).objects.filter(pk__in=[p.pk for p in moved]).update(folder=extra)
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep()  # the pictures' own folder changed: still in this library
    assert {p.pk for p in moved} <= set(ranked_ids(pictures[2]))
    extra.library = other
    extra.save()  # the host moves the folder; no picture is saved
    assert not {p.pk for p in moved} & set(ranked_ids(pictures[2]))
    assert len(ranked_ids(pictures[2])) == 1
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep()
    tasks.embed_project(host.scope(other))
    assert {p.pk for p in moved} <= set(ranked_ids(others[0]))
    assert readiness.get_readiness(host.scope(library)).total == 2
    assert readiness.get_readiness(host.scope(other)).total == 4
