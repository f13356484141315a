"""Django's PostgreSQL backend, plus: start (or join) the embedded server on connect.

Settings name this backend only when ``DATABASE_URL`` is unset (assetsite.database).
Starting the server here, not when settings are imported, keeps commands that never
touch the database (``--help``, ``makemigrations --check``, ``collectstatic``) from
starting one, and lets every process that does connect register itself as a user.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import base as postgresql

from assetsite.database import ensure_embedded_server


class DatabaseWrapper(postgresql.DatabaseWrapper):
    def get_connection_params(self) -> dict[str, Any]:
        ensure_embedded_server(self.settings_dict)
        return super().get_connection_params()
