"""Everything ``similarity`` knows about its host: models, keys, files, access, links.

The only package that reads the host-model settings and the only one that reverses URL
names; the rest of the app asks it.
"""
