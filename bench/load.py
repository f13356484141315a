"""Load: 20 users browse and search while 2,000 images are uploaded and embedded.

Starts ``manage.py serve`` (the development server, or with ``--server production``
``serve --production``: gunicorn + WhiteNoise under ``assetsite.settings_production``,
requests marked as coming through a TLS proxy) on 127.0.0.1 with its own database, creates users, a project
and a dataset, then runs a thread pool of HTTP clients (``requests``) against it: 20
users each looping over the dataset page, the asset list API, thumbnails, readiness and
similarity search (most and least), while 4 uploaders post 2,000 generated JPEGs through
the API. When every upload is in, it waits for the worker to finish, stops the users and
prints requests/s, p50/p95/p99 latency per route and errors, then proves from the
database that every upload ended embedded or failed with a reason. Bounded in count and
time; loopback only.

    python bench/load.py [--images 2000] [--users 20] [--model tiny|small]
                         [--server dev|production] [--workers 2] [--threads 4]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _setup import ROOT, machine

from assetsite.processes import stop_process

DATABASE = "assetsite_bench_load"
PASSWORD = "load-test-pw"  # noqa: S105 (throwaway users of a throwaway database)
MAX_SECONDS = 1500
#: Production settings use Secure cookies and HTTPS-only CSRF: the bench plays the TLS
#: proxy in front of gunicorn (X-Forwarded-Proto, SECURE_PROXY_SSL_HEADER).
PROXY_HEADERS: dict[str, str] = {}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jpeg(seed: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((640, 480), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def record(self, route: str, started: float, response: requests.Response | None,
               error: str | None = None) -> None:
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.latency[route].append(elapsed)
            if error or response is None or response.status_code >= 400:
                self.errors[route].append(error or f"HTTP {response.status_code}")


def timed(stats: Stats, route: str, session: requests.Session, method: str, url: str, **kw):
    started = time.perf_counter()
    try:
        response = session.request(method, url, timeout=60, **kw)
    except requests.RequestException as exc:
        stats.record(route, started, None, f"{type(exc).__name__}")
        return None
    stats.record(route, started, response)
    return response


class ProxiedSession(requests.Session):
    """A client behind the TLS proxy: Secure cookies go back over the loopback's plain
    HTTP, as the proxy forwards them (one host only, so every cookie is sent)."""

    def prepare_request(self, request: requests.Request) -> requests.PreparedRequest:
        prepared = super().prepare_request(request)
        if PROXY_HEADERS and len(self.cookies):
            prepared.headers["Cookie"] = "; ".join(f"{c.name}={c.value}" for c in self.cookies)
        return prepared


def new_session() -> requests.Session:
    session = ProxiedSession()
    session.headers.update(PROXY_HEADERS)
    return session


def login(base: str, username: str) -> requests.Session:
    session = new_session()
    page = session.get(f"{base}/accounts/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    referer = f"{base}/".replace("http://", "https://") if PROXY_HEADERS else f"{base}/"
    response = session.post(f"{base}/accounts/login/", timeout=30, headers={"Referer": referer},
                            data={"username": username, "password": PASSWORD,
                                  "csrfmiddlewaretoken": token}, allow_redirects=False)
    if response.status_code != 302:
        raise SystemExit(f"login as {username} failed: HTTP {response.status_code}")
    return session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--uploaders", type=int, default=4)
    parser.add_argument("--model", choices=["tiny", "small"], default="tiny")
    parser.add_argument("--server", choices=["dev", "production"], default="dev")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn workers (production)")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker (production)")
    args = parser.parse_args()

    from similarity.testing import SMALL, TINY, make_dinov2_checkpoint

    model = make_dinov2_checkpoint(Path(tempfile.mkdtemp()) / f"dinov2-{args.model}",
                                   size=SMALL if args.model == "small" else TINY)
    media = tempfile.mkdtemp(prefix="load-media-")
    env = {**os.environ, "ASSETSITE_DB_NAME": DATABASE, "ASSETSITE_MEDIA_ROOT": media,
           "SIMILARITY_MODEL": str(model), "DJANGO_SETTINGS_MODULE": "assetsite.settings",
           "PYTHONUNBUFFERED": "1"}
    env.pop("DATABASE_URL", None)
    os.environ.update({k: env[k] for k in ("ASSETSITE_DB_NAME", "ASSETSITE_MEDIA_ROOT",
                                           "SIMILARITY_MODEL", "DJANGO_SETTINGS_MODULE")})
    import django

    django.setup()
    import logging

    logging.disable(logging.INFO)
    from django.core.management import call_command

    _reset_database()
    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from datasets.models import Dataset, Project, ProjectMembership

    project = Project.objects.create(name="load")
    dataset = Dataset.objects.create(project=project, name="incoming")
    users, uploaders = [], []
    for i in range(args.users + args.uploaders):
        user = User.objects.create_user(f"load{i}", password=PASSWORD)
        role = "viewer" if i < args.users else "editor"
        ProjectMembership.objects.create(project=project, user=user, role=role)
        (users if i < args.users else uploaders).append((user.username, Token.objects.create(user=user).key))
    from django.db import connections

    connections.close_all()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(Path(media) / "serve.log", "w+")
    command = [sys.executable, str(ROOT / "manage.py"), "serve", "--port", str(port), "--no-demo"]
    if args.server == "production":
        command += ["--production", "--workers", str(args.workers), "--threads", str(args.threads)]
        env.update(DJANGO_SETTINGS_MODULE="assetsite.settings_production",
                   DJANGO_SECRET_KEY=secrets.token_urlsafe(64), DJANGO_ALLOWED_HOSTS="127.0.0.1",
                   DJANGO_SECURE_SSL_REDIRECT="0",
                   ASSETSITE_STATIC_ROOT=str(Path(media) / "static"))
        PROXY_HEADERS["X-Forwarded-Proto"] = "https"
    serve = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/healthz", timeout=2, headers=PROXY_HEADERS).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("serve did not come up; see " + log.name)
        print(f"Machine: {machine()}; load average before: {os.getloadavg()[0]:.1f}")
        server = "development server" if args.server == "dev" else \
            f"gunicorn {args.workers} workers x {args.threads} threads"
        print(f"serve on {base} ({server}); {args.users} users, {args.uploaders} uploaders, "
              f"{args.images} images (640x480 JPEG), model {args.model}\n")
        run_load(base, project.pk, dataset.pk, users, uploaders, args.images)
    finally:
        stop_process(serve, timeout=60)
        log.close()


def run_load(base, project_id, dataset_id, users, uploaders, images) -> None:
    stats = Stats()
    stop = threading.Event()
    uploaded: list[int] = []
    uploaded_lock = threading.Lock()
    blobs = [jpeg(seed) for seed in range(50)]
    end_by = time.monotonic() + MAX_SECONDS

    def uploader(token: str, share: range) -> None:
        session = new_session()
        session.headers["Authorization"] = f"Token {token}"
        for n in share:
            if time.monotonic() > end_by:
                return
            response = timed(stats, "POST /api/assets/", session, "POST", f"{base}/api/assets/",
                             data={"dataset": dataset_id},
                             files={"file": (f"img{n}.jpg", blobs[n % len(blobs)], "image/jpeg")})
            if response is not None and response.status_code == 201:
                with uploaded_lock:
                    uploaded.append(response.json()["id"])

    def user(username: str, token: str, seed: int) -> None:
        rng = random.Random(seed)
        session = login(base, username)
        api = new_session()
        api.headers["Authorization"] = f"Token {token}"
        while not stop.is_set() and time.monotonic() < end_by:
            choice = rng.random()
            with uploaded_lock:
                known = list(uploaded[-500:])
            if choice < 0.2:
                timed(stats, "GET /datasets/{id}/ (page)", session, "GET",
                      f"{base}/datasets/{dataset_id}/")
            elif choice < 0.4:
                timed(stats, "GET /api/assets/", api, "GET",
                      f"{base}/api/assets/?dataset={dataset_id}&limit=50")
            elif choice < 0.5:
                timed(stats, "GET /api/projects/{id}/similarity/", api, "GET",
                      f"{base}/api/projects/{project_id}/similarity/")
            elif choice < 0.6 and known:
                timed(stats, "GET /assets/{id}/thumbnail/", session, "GET",
                      f"{base}/assets/{rng.choice(known)}/thumbnail/")
            elif known:
                order = "least" if choice > 0.9 else "most"
                target = rng.choice(known[:-50] or known)
                response = timed(stats, f"GET /api/assets/{{id}}/similar/ ({order})", api, "GET",
                                 f"{base}/api/assets/{target}/similar/?order={order}")
                if response is not None and response.status_code == 400:
                    # "not embedded yet" is a correct answer for a fresh upload, not an error
                    with stats.lock:
                        stats.errors[f"GET /api/assets/{{id}}/similar/ ({order})"].pop()
            time.sleep(rng.uniform(0.2, 0.6))  # think time: ~2 requests/s per user

    started = time.perf_counter()
    per = -(-images // len(uploaders))
    with ThreadPoolExecutor(len(users) + len(uploaders)) as pool:
        user_futures = [pool.submit(user, name, token, i) for i, (name, token) in enumerate(users)]
        upload_futures = [pool.submit(uploader, token, range(i * per, min(images, (i + 1) * per)))
                          for i, (_name, token) in enumerate(uploaders)]
        for future in upload_futures:
            future.result()
        upload_seconds = time.perf_counter() - started
        # keep browsing until the worker has embedded everything
        session = new_session()
        session.headers["Authorization"] = f"Token {uploaders[0][1]}"
        while time.monotonic() < end_by:
            state = session.get(f"{base}/api/projects/{project_id}/similarity/", timeout=30).json()
            if state["state"] == "ready" and state["pending"] == 0:
                break
            time.sleep(1)
        embed_seconds = time.perf_counter() - started
        stop.set()
        for future in user_futures:
            future.result()
    total_seconds = time.perf_counter() - started
    print(f"load average after: {os.getloadavg()[0]:.1f} (1 min), {os.getloadavg()[1]:.1f} (5 min)")
    report(stats, total_seconds, upload_seconds, embed_seconds, len(uploaded), images)
    verify(uploaded, images)


def report(stats, total, upload_seconds, embed_seconds, uploaded, images) -> None:
    count = sum(len(v) for v in stats.latency.values())
    errors = sum(len(v) for v in stats.errors.values())
    print(f"{uploaded}/{images} uploads in {upload_seconds:.0f} s; all embedded after "
          f"{embed_seconds:.0f} s; {count} requests in {total:.0f} s = {count / total:.1f} req/s; "
          f"errors: {errors}\n")
    print(f"{'route':<42} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for route in sorted(stats.latency):
        values = stats.latency[route]
        p95, p99 = np.percentile(values, [95, 99])
        print(f"{route:<42} {len(values):>6} {statistics.median(values):8.1f} {p95:8.1f} "
              f"{p99:8.1f} {len(stats.errors[route]):>6}")
    for route, problems in stats.errors.items():
        if problems:
            print(f"  {route}: {sorted(set(problems))[:5]}")


def verify(uploaded: list[int], images: int) -> None:
    from similarity.models import Embedding

    rows = Embedding.objects.filter(asset_id__in=uploaded)
    by_status = {s: rows.filter(status=s).count() for s in ("done", "failed", "pending")}
    without_reason = rows.filter(status="failed", error="").count()
    duplicates = rows.count() - rows.values("asset_id", "model_key").distinct().count()
    print(f"\nAfterwards: {by_status['done']} embedded, {by_status['failed']} failed "
          f"({without_reason} without a reason), {by_status['pending']} pending, "
          f"{duplicates} duplicate rows, of {len(uploaded)} uploads.")
    ok = (by_status["pending"] == 0 and without_reason == 0 and duplicates == 0
          and by_status["done"] + by_status["failed"] == len(uploaded) == images)
    print("Every upload is embedded or failed with a reason." if ok else "CHECK FAILED")
    if not ok:
        raise SystemExit(1)


def _reset_database() -> None:
    import psycopg
    from django.conf import settings
    from django.db import connection, connections

    connection.ensure_connection()  # starts (or joins) the embedded server: HOST and PORT
    connections.close_all()
    db = settings.DATABASES["default"]
    with psycopg.connect(host=db["HOST"], port=db["PORT"], user="postgres", dbname="postgres",
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')


if __name__ == "__main__":
    main()
