"""assetsite.settings_production for tests/test_production_server.py, plus one
ALT_CLUSTERS cluster, so serve's supervision of alternative clusters is exercised."""

from assetsite.settings_production import *  # noqa: F403
from assetsite.settings_production import Q_CLUSTER

Q_CLUSTER = {**Q_CLUSTER, "ALT_CLUSTERS": {"queries": {"workers": 1}}}
