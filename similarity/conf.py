"""One settings object for the app, read from the host's ``SIMILARITY`` dict.

Every key has a documented default, so a host names only what differs. Values are
read lazily and cached; the cache is dropped on Django's ``setting_changed`` signal so
``override_settings(SIMILARITY=...)`` works in tests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

#: The text-aligned model suggested for text search (off until TEXT_MODEL_NAME names one).
SIGLIP2_B32 = "google/siglip2-base-patch32-256"

#: Pinned commit of ``facebook/dinov2-small`` on the Hugging Face hub (safetensors weights).
DINOV2_SMALL = "facebook/dinov2-small"
DINOV2_SMALL_REVISION = "150c8e7bb7cef2d30ec31b13a517af14840ee3f7"

DEFAULTS: dict[str, Any] = {
    # The host's asset model ("app_label.ModelName") and its image FileField/ImageField.
    # No default: the system check similarity.E001 asks for it (a framework sub-app such
    # as similarity.contrib.wagtail supplies it).
    "ASSET_MODEL": None,
    "IMAGE_FIELD": "file",
    # The ORM path from an asset to its project (e.g. "album" or "dataset__project"), and
    # optionally the project model (derived from the path when None). PROJECT_LOOKUP=None
    # makes the whole site one scope.
    "PROJECT_MODEL": None,
    "PROJECT_LOOKUP": None,
    # Which assets are images: None (all of them), a dict of ORM lookups applied to the
    # asset queryset (e.g. {"kind": "image"}), or a dotted path to a callable
    # ``(queryset) -> queryset``.
    "IS_IMAGE": None,
    # The DINOv2 checkpoint: a hub id or a local folder holding config.json and
    # model.safetensors. MODEL_REVISION=None pins the default model to a known commit
    # and uses "main" for any other hub id.
    "MODEL_NAME": DINOV2_SMALL,
    "MODEL_REVISION": None,
    # How operators set MODEL_NAME on this site, named in error messages (a site that
    # reads it from an environment variable says so here).
    "MODEL_NAME_SOURCE": "SIMILARITY['MODEL_NAME']",
    "DEVICE": "auto",  # "auto" tries cuda, then mps, then cpu
    "BATCH_SIZE": 8,  # images per forward pass
    # Numeric precision, part of the model key (a change re-embeds like a model change):
    # None = fp16 autocast when DEVICE is "cuda", else fp32; "fp32"; "int8" = dynamic
    # int8 linear layers on the CPU (~2.5x faster; check with similarity_check_int8);
    # "fp16" (CUDA only). DEVICE "auto" stays fp32, so the key never depends on hardware.
    "PRECISION": None,
    "GPU_BATCH_SIZE": 64,  # images per forward pass on a CUDA device
    # Images of any shape are embedded in bounded memory (only the region the model sees
    # is resized); a host that wants elongated images refused may set a ratio here.
    "MAX_ASPECT_RATIO": None,
    "TASK_SIZE": 64,  # assets per background task
    # Search: scopes up to this many embedded images use an exact scan; bigger ones a
    # per-project HNSW index with this ef_search.
    "EXACT_SEARCH_MAX_ROWS": 20_000,
    "HNSW_EF_SEARCH": 400,
    "HNSW_M": 16,
    # 128, not pgvector's 64: on a million clustered rows 64 gave recall@100 0.92 (some
    # queries near 0) and 128 gave 0.98 at ef_search 400, for a build about 1.4x longer.
    "HNSW_EF_CONSTRUCTION": 128,
    # Most memory one HNSW build may use (PostgreSQL's maintenance_work_mem for that
    # build only); a graph that does not fit is built on disk, many times slower. A
    # million 384-d vectors need about 1.7 GB.
    "HNSW_BUILD_MEMORY_MB": 2048,
    "MAX_RESULTS": 100,
    # Courtesy throttle on the search API per user (the caps are the guarantee); the
    # host's REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["similarity_search"] wins if set.
    "SEARCH_THROTTLE_RATE": "120/min",
    # Exact searches run in NumPy over a per-process cache of each project's vectors, up
    # to this many MiB per process (0 turns it off: exact scans then run in SQL).
    "EXACT_CACHE_MB": 512,
    # How a scope is held there: "auto" is float32 while it fits, else int8 codes (a
    # quarter of the memory; still exact: rows that could rank are re-read exactly).
    "EXACT_CACHE_LAYOUT": "auto",
    # Background work: django-q2 cluster name for embedding tasks (None: the default
    # cluster), how often the sweep runs, and how long a row may stay pending before
    # the sweep re-queues it (keep it above Q_CLUSTER["retry"]).
    "QUEUE_CLUSTER": None,
    "SWEEP_MINUTES": 5,
    "PENDING_TIMEOUT": 900,
    # How long a worker's claim on a batch of rows lasts; a worker that died leaves
    # claims that expire after this, and the sweep then queues the rows again.
    "CLAIM_SECONDS": 300,
    # Searching with an outside image (similarity.search.outside): where it is embedded —
    # "worker" (default: a django-q task on QUERY_CLUSTER, default the embedding cluster,
    # runs it through the worker's loaded model; the web process waits up to
    # QUERY_TIMEOUT seconds) or "web" (each web process loads the model on first use).
    # Files above QUERY_IMAGE_MAX_MB are refused; unsaved query images (vector + preview
    # only) are purged by the sweep after QUERY_IMAGE_HOURS. ADD_QUERY_IMAGE: optional
    # dotted path to a class with targets(user, project_id) -> [(value, label)] and
    # add(user, project_id, target, uploaded_file) -> asset, offering "Add to dataset".
    "QUERY_EMBEDDING": "worker",
    "QUERY_CLUSTER": None,
    "QUERY_TIMEOUT": 20,
    "QUERY_IMAGE_MAX_MB": 50,
    # The web process decodes outside images: JPEGs at reduced size (DCT scaling), other
    # formats in full, so those are refused above QUERY_IMAGE_MAX_PIXELS (from the
    # header, before decoding); at most QUERY_IMAGE_CONCURRENCY decode or embed at once
    # per process, the others are answered 503 with Retry-After.
    "QUERY_IMAGE_MAX_PIXELS": 32_000_000,
    "QUERY_IMAGE_CONCURRENCY": 2,
    "QUERY_IMAGE_HOURS": 24,
    "ADD_QUERY_IMAGE": None,
    # Who may see and re-index what: a class with visible_project_ids / can_view /
    # can_edit (see similarity.host.access). The default lets staff only.
    "ACCESS_POLICY": "similarity.host.access.StaffOnlyAccess",
    # Pages extend this template; it must define the "content" and "title" blocks.
    "BASE_TEMPLATE": "base.html",
    # Optional dotted paths to callables (asset) -> str for links and thumbnails in
    # results; by default get_absolute_url() and the image field's URL.
    "ASSET_URL": None,
    "THUMBNAIL_URL": None,
    "ASSET_LABEL": None,
    # Optional dotted path to a DRF serializer for assets in API results; by default
    # id, label, url and thumbnail_url.
    "ASSET_SERIALIZER": None,
    # Bulk actions on selected images (similarity.actions): dotted paths to the host's own
    # BulkAction classes (e.g. a TagAction subclass), offered before the built-in exports,
    # ZIP download and delete; how many assets one action may take; and an optional
    # callable (asset) -> str for the exports' "group" column (default: the project name).
    "BULK_ACTIONS": [],
    "BULK_ACTIONS_MAX_ASSETS": 1000,
    "ASSET_GROUP": None,
    # Saved searches that watch new uploads (similarity.watch): a "most similar" search
    # saved without a threshold notifies for new images with similarity >= WATCH_THRESHOLD;
    # a "least similar" one for new images with similarity <= WATCH_LEAST_THRESHOLD.
    "WATCH_THRESHOLD": 0.8,
    "WATCH_LEAST_THRESHOLD": 0.2,
    # Dataset insight (neighbour lists, duplicates, outliers, map): its own worker tasks,
    # queued after a batch is embedded, each working this many seconds before it queues
    # its continuation (progress is kept, so a killed worker resumes); on INSIGHT_CLUSTER
    # (None: the embedding cluster). The map's PCA basis is refitted when the project's
    # size changed by more than MAP_REFIT_SHARE since the fit (new images are projected
    # with the stored basis until then). A scope whose task fails (or whose worker dies)
    # INSIGHT_MAX_ATTEMPTS times on the same images is not retried until they change.
    "INSIGHT_TASK_SECONDS": 30,
    "INSIGHT_MAX_ATTEMPTS": 3,
    "INSIGHT_CLUSTER": None,
    "MAP_REFIT_SHARE": 0.2,
    # An image's edit page in Wagtail's admin warns "This looks like N images already in
    # the library" for those at or above this similarity (None: no warning).
    "NEAR_DUPLICATE_SIMILARITY": 0.95,
    # Text search ("Describe what you are looking for"): a second, text-aligned model that
    # embeds text and images in one space (a SigLIP / SigLIP 2 checkpoint: a hub id such as
    # SIGLIP2_B32, or a local folder with config.json, model.safetensors and the
    # tokenizer). None (the default) turns text search off; DINOv2 stays the model of
    # image-to-image search either way. The worker embeds both models from one decode of
    # each image; a description is embedded where QUERY_EMBEDDING says (the text tower only).
    # TEXT_MODEL_REVISION pins a hub commit (None: "main"; pin it in production).
    "TEXT_MODEL_NAME": None,
    "TEXT_MODEL_REVISION": None,
    "TEXT_MODEL_NAME_SOURCE": "SIMILARITY['TEXT_MODEL_NAME']",
    # Longest description accepted, in characters (the model reads its first 64 tokens).
    "TEXT_QUERY_MAX_CHARS": 500,
}

IMPORT_STRINGS = frozenset(
    {"ACCESS_POLICY", "ASSET_URL", "THUMBNAIL_URL", "ASSET_LABEL", "ASSET_SERIALIZER",
     "ASSET_GROUP"}
)


#: Sub-apps that integrate a framework supply their own defaults (the host's SIMILARITY
#: still wins). Their modules must import nothing that needs the app registry.
FRAMEWORK_DEFAULTS = {"similarity.contrib.wagtail": "similarity.contrib.wagtail.defaults"}


def framework_defaults() -> dict[str, Any]:
    """Defaults of the installed framework sub-apps, layered over ours."""
    merged: dict[str, Any] = {}
    installed = set(getattr(settings, "INSTALLED_APPS", ()))
    for app, module in FRAMEWORK_DEFAULTS.items():
        if app in installed or any(name.startswith(app + ".apps.") for name in installed):
            merged.update(import_string(f"{module}.DEFAULTS"))
    return merged


def effective(name: str) -> Any:
    """One raw setting: the host's value, else a framework sub-app's, else ours."""
    user = getattr(settings, "SIMILARITY", {}) or {}
    if name in user:
        return user[name]
    extra = framework_defaults()
    return extra[name] if name in extra else DEFAULTS[name]


class SimilaritySettings:
    """Attribute access to ``settings.SIMILARITY`` with defaults and imported callables."""

    def __init__(self, defaults: dict[str, Any], import_strings: frozenset[str]) -> None:
        self.defaults = defaults
        self.import_strings = import_strings
        self._cached: set[str] = set()

    @property
    def user_settings(self) -> dict[str, Any]:
        return getattr(settings, "SIMILARITY", {}) or {}

    def __getattr__(self, attr: str) -> Any:
        if attr not in self.defaults:
            raise AttributeError(f"Invalid SIMILARITY setting: {attr!r}")
        value = effective(attr)
        if attr in self.import_strings and isinstance(value, str):
            value = import_string(value)
        self._cached.add(attr)
        setattr(self, attr, value)
        return value

    @property
    def model_revision(self) -> str:
        """The revision to load: the pinned one for the default model, else as set."""
        if self.MODEL_REVISION:
            return self.MODEL_REVISION
        return DINOV2_SMALL_REVISION if self.MODEL_NAME == DINOV2_SMALL else "main"

    @property
    def text_model_revision(self) -> str:
        """The text model's revision to load ("main" unless TEXT_MODEL_REVISION pins one)."""
        return self.TEXT_MODEL_REVISION or "main"

    def reload(self) -> None:
        for attr in self._cached:
            delattr(self, attr)
        self._cached.clear()


similarity_settings = SimilaritySettings(DEFAULTS, IMPORT_STRINGS)


def setting(name: str) -> Any:
    """Read one raw setting (used by models and migrations, before apps are ready)."""
    return effective(name)


#: Stands in for an unset ASSET_MODEL so our models still import; the system check
#: similarity.E001 then says what to set, instead of a traceback at start-up.
UNSET_ASSET_MODEL = "similarity.AssetModelNotConfigured"


def asset_model_setting() -> str:
    """The asset model label for our foreign key and migrations."""
    return effective("ASSET_MODEL") or UNSET_ASSET_MODEL


def _reload(*, setting: str, **kwargs: Any) -> None:
    # Caches built from these settings elsewhere (the host's models) listen themselves.
    if setting in ("SIMILARITY", "INSTALLED_APPS"):
        similarity_settings.reload()


setting_changed.connect(_reload)
