"""Host settings for ``manage.py check`` runs with a SIMILARITY taken from the environment.

tests/test_hosts.py runs ``python -m django check`` with this module and
SIMILARITY_CHECK_JSON holding one misconfiguration, as a host might write it. ``check``
without ``--database`` opens no connection, so the database is never started here.
"""

import json
import os

from tests.hosts.settings_common import *  # noqa: F403

DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "unused"}}
SIMILARITY = json.loads(os.environ["SIMILARITY_CHECK_JSON"])
