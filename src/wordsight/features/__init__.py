"""Image features, computed once: batched extraction, the content-addressed cache, Parquet files,
the engines that run a model and the pixel views. Names load lazily (see :mod:`wordsight._util.lazy`),
so that importing a light module of this package (``views``) does not import torch."""
from .._util.lazy import lazy_exports

_EXPORTS = {
    **dict.fromkeys(["FeatureCache", "MemoryCache", "default_cache_dir", "open_cache"], ".cache"),
    **dict.fromkeys(["DEFAULT_BATCH_SIZE", "Batch", "FeatureSet", "extract_features", "iter_features"], ".extract"),
    **dict.fromkeys(["ViewSets", "extract_models", "extract_views"], ".multi_view"),
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
