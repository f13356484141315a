"""A second host app, shaped like real sites that know nothing of `similarity`.

Three families of models, one per primary-key type, each installed as the asset model by
its own settings module (tests/hosts/*_settings.py):

- 4-byte ``AutoField`` keys (the settings' DEFAULT_AUTO_FIELD): pictures in folders in
  libraries, reached by the two-hop path ``folder__library``; no ``get_absolute_url``;
  the default staff-only policy.
- ``UUIDField`` keys: scans in workspaces with members; a ``get_absolute_url``; a
  membership policy.
- ``CharField`` keys (slug-like codes): pins on boards; the image is a plain FileField;
  no ``get_absolute_url``; an owner policy.

None has a ``kind`` field: every asset is an image.
"""
