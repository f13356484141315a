"""``similarity`` as a Wagtail feature: the site's image library is the searchable scope,
Wagtail's image permissions decide who sees what, and the pages live in Wagtail's admin.

Add ``"similarity.contrib.wagtail"`` (before the ``wagtail.*`` apps) and ``"similarity"``
to ``INSTALLED_APPS``; :mod:`similarity.contrib.wagtail.defaults` supplies the settings.
"""
