"""The dataset page with 100,000 assets: first page, deep page, filename and metadata search.

    python bench/browse.py [--assets 100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import django_for_bench, insert_assets, machine

DATABASE = "assetsite_bench_browse"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=100_000)
    args = parser.parse_args()
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver"
    django_for_bench(DATABASE)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from datasets.models import Dataset, Project, ProjectMembership

    setup_test_environment()  # the test client's response.context
    Project.objects.filter(name="browse bench").delete()
    User.objects.filter(username="browse-bench").delete()
    project = Project.objects.create(name="browse bench")
    dataset = Dataset.objects.create(project=project, name="d")
    insert_assets(dataset.pk, args.assets)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE datasets_asset")
    user = User.objects.create_user("browse-bench")
    ProjectMembership.objects.create(project=project, user=user, role="viewer")
    client = Client()
    client.force_login(user)
    url = f"/datasets/{dataset.pk}/"
    lowest = connection.cursor()
    lowest.execute("SELECT min(id) FROM datasets_asset WHERE dataset_id = %s", [dataset.pk])
    deep = {"before": lowest.fetchone()[0] + 100}
    print(f"Machine: {machine()}\n{args.assets:,} assets in one dataset; median of 7 requests\n")
    for label, query in [("first page (60 tiles)", {}), ("deep page (keyset)", deep),
                         ("filename contains 'shot_4242'", {"q": "shot_4242"}),
                         ("filename contains 'cam_7_'", {"q": "cam_7_"}),
                         ("metadata camera=front weather=rain", {"meta": "camera=front weather=rain"})]:
        client.get(url, query)
        times = []
        for _ in range(7):
            started = time.perf_counter()
            response = client.get(url, query)
            times.append((time.perf_counter() - started) * 1000)
        print(f"{label:38s} {sorted(times)[3]:6.1f} ms   {response.context['total']:>7,} matches")
    project.delete()
    user.delete()


if __name__ == "__main__":
    main()
