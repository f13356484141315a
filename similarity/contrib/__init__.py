"""Framework integrations of ``similarity``, each a Django app of its own (like DRF's
``authtoken``): install the one for your framework beside ``similarity``."""
