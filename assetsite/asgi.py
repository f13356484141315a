"""ASGI entry point."""

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # see manage.py: before NumPy loads

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assetsite.settings")
application = get_asgi_application()
