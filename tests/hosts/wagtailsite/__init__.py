"""A Wagtail site as `wagtail start` makes it (trimmed), plus a custom image model with
4-byte keys; tests/hosts/host_wagtail.py installs similarity into it."""
