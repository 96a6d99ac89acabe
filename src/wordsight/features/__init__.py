from .cache import FeatureCache, MemoryCache, default_cache_dir, open_cache
from .extract import DEFAULT_BATCH_SIZE, Batch, FeatureSet, extract_features, iter_features

__all__ = ["Batch", "DEFAULT_BATCH_SIZE", "FeatureCache", "FeatureSet", "MemoryCache",
           "default_cache_dir", "extract_features", "iter_features", "open_cache"]
