#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

Two additions to the stock file:
- operator commands that read the site's tables (``DATABASE_COMMANDS``) first bring a
  new embedded database up to date (or, on a ``DATABASE_URL`` server, say what to run),
  instead of ending in a "relation does not exist" traceback;
- ``qcluster`` makes every process it forks die with its parent, so a cluster killed
  with SIGKILL leaves no workers behind.

Nothing here touches the database for other commands: the embedded server starts on the
first connection (``assetsite.db``), so ``--help`` starts nothing.
"""

import os
import sys

DATABASE_COMMANDS = {
    "qcluster", "qinfo", "qmonitor", "qmemory",
    "similarity_status", "similarity_reindex",
    "createsuperuser", "changepassword", "shell",
}


#: NumPy's OpenBLAS threads spin ~0.1 s after each product (its default timeout, 2^28
#: cycles), taking the cores from torch's threads: a text query embedded right after a
#: search ran 45 % slower (178 vs 123 ms here). 2^4 cycles: they sleep at once. Read when
#: OpenBLAS loads, so it is set before anything imports NumPy.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assetsite.settings")
    from django.core.management import execute_from_command_line

    command = sys.argv[1] if len(sys.argv) > 1 else ""
    asks_help = any(arg in ("-h", "--help") for arg in sys.argv[2:])
    if command in DATABASE_COMMANDS and not asks_help:
        import django

        django.setup()
        from assetsite.firstrun import prepare_database

        prepare_database(sys.stderr)
    if command == "qcluster":
        from assetsite.processes import children_die_with_their_parent

        children_die_with_their_parent()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
