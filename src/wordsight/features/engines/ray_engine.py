"""The Ray Data engine: the same :class:`EmbedBatch` in ``map_batches`` on an actor pool.

Each actor builds one ``EmbedBatch`` (the model loads once per actor) and embeds the batches Ray
hands it; the driver receives the rows in input order (``preserve_order``) and writes them as
Parquet shards of ``shard_size`` images. A shard's file name carries a hash of its image paths
and the model, so a re-run skips every finished shard and computes only the rest.

Local: ``ray.init()`` is called for you (all cores). A cluster: ``address="auto"`` on a cluster
node, or ``address="ray://HOST:10001"`` from outside; the image paths must be readable by the
workers (a shared file system), and the shards are written by the driver.
"""
from __future__ import annotations

import logging

import numpy as np

from ..._util.errors import WordsightError
from ...io.sources import Problem, Sample
from .batch import Done, EmbedBatch

CONNECT_TIMEOUT_S = 10.0  # a cluster's port that does not accept a connection by then is unreachable


class RayAddressError(WordsightError):
    """A Ray ``address`` that cannot be reached; ``str`` names it and why (one line)."""


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``HOST:PORT`` or ``ray://HOST:PORT``; None for ``auto``, ``local`` or no port."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rstrip("/").rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Refuse an address whose port does not accept a TCP connection within ``timeout`` seconds:
    ``ray.init`` itself retries an unreachable GCS or Ray Client server for minutes (forever, as
    seen with ``127.0.0.1:1``), so the connection is tried once here first."""
    import socket

    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            pass
    except OSError as e:
        why = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e) or type(e).__name__)
        raise RayAddressError(f"--address {address}: cannot reach a Ray cluster there ({why}; connect timeout "
                              f"{timeout:g} s)") from None


def init_ray(address: str | None = None, quiet: bool = True):
    """Connect to Ray (``address``) or start a local one, unless this process is already connected."""
    import ray

    if address:
        check_reachable(address)  # named but unreachable: said even where this process already runs Ray
    if not ray.is_initialized():
        kwargs = {"log_to_driver": not quiet, "include_dashboard": False} if not address else {}
        if address:
            ray.init(address=address, **({"log_to_driver": not quiet}))
        else:
            ray.init(**kwargs)
    return ray


def _cache_arg(cache):
    """What an actor needs to open the same cache: a path, or False (no cache)."""
    from ..cache import MemoryCache, default_cache_dir

    if cache is False or isinstance(cache, MemoryCache):
        return False
    root = getattr(cache, "root", cache)
    return str(root if root is not None else default_cache_dir())


class ActorEmbedBatch(EmbedBatch):
    """:class:`EmbedBatch` on a Ray actor. A fine-tuned encoder's weights are registered in the
    driver only (from its saved model folder), so they travel with the constructor's arguments
    and are registered, digest checked, before the model loads."""

    def __init__(self, model, *, weights=None, **kwargs):
        if weights is not None:
            from ...encoders.finetuned import register_weights

            register_weights(model, weights, where=f"weights of {model} sent to a Ray actor")
        super().__init__(model, **kwargs)


def _finetuned_weights(model):
    """The registered weights when ``model`` names a fine-tuned encoder, else None."""
    from ...encoders.finetuned import is_finetuned, registered

    return registered(model) if is_finetuned(model) else None


def ray_batches(samples: list[Sample], model="efficientnet-lite0", *, address: str | None = None,
                concurrency: int | None = None, num_cpus: float = 1, num_gpus: float = 0,
                batch_size: int | None = None, inner_engine: str = "auto", precision: str = "auto",
                cache=None, view=None, view_key: str = "", max_pixels: int | None = None,
                small_input="auto", quiet: bool = True):
    """Yield ``(samples, Done)`` per batch, in the order of ``samples``, computed on Ray."""
    from ...io.images import DEFAULT_MAX_PIXELS
    from .runners import DEFAULT_BATCH

    if not samples:
        return
    ray = init_ray(address, quiet)
    import ray.data  # noqa: F811  (the submodule, on the package init_ray returned)

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = not quiet
    if quiet:
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    if concurrency is None:
        if num_gpus:
            concurrency = max(1, int(ray.cluster_resources().get("GPU", 1) // num_gpus))
        else:
            concurrency = max(1, int(ray.cluster_resources().get("CPU", 1) // max(num_cpus, 1)))
    engine = inner_engine if inner_engine != "ray" else "auto"
    if precision == "auto":
        from .default_precision import pinned

        # The nodes of a cluster may have different CPUs: one precision for every shard, the one
        # every node computes, unless $WORDSIGHT_PRECISION pins another.
        precision = pinned() or "fp32"
    size = batch_size or DEFAULT_BATCH["onnx" if engine != "torch" else "torch"]
    items = [{"index": i, "path": str(s.path), "label": s.label, "media": media_json(s)} for i, s in enumerate(samples)]
    if any(s.data is not None for s in samples):
        for item, s in zip(items, samples):
            item["bytes"] = s.data
    # enough blocks for every actor to get work, few enough to keep per-block overhead small
    n_blocks = min(len(items), max(concurrency, min(-(-len(items) // size), 64 * concurrency)))
    ds = ray.data.from_items(items, override_num_blocks=n_blocks)
    fn_kwargs = dict(model=model, engine=engine, precision=precision, batch_size=size, cache=_cache_arg(cache),
                     view=view, view_key=view_key, max_pixels=max_pixels or DEFAULT_MAX_PIXELS,
                     threads=max(1, int(num_cpus)), small_input=small_input, weights=_finetuned_weights(model))
    ds = ds.map_batches(ActorEmbedBatch, fn_constructor_kwargs=fn_kwargs, batch_size=size, batch_format="numpy",
                        compute=ray.data.ActorPoolStrategy(size=concurrency), num_cpus=num_cpus,
                        num_gpus=num_gpus or None)
    for cols in ds.iter_batches(batch_size=None, batch_format="numpy"):
        yield from_columns(cols, samples)


def media_json(sample) -> str:
    """A frame's :class:`~wordsight.io.media_ref.MediaRef` as text (Ray Data keeps strings, not str subclasses)."""
    from ...io.media_ref import media_of

    ref = media_of(sample.path)
    return "" if ref is None else ref.to_json()


def from_columns(cols: dict, samples: list[Sample]) -> tuple[list[Sample], Done]:
    """Turn the batch function's columns back into the local engine's ``Done`` for ``samples``."""
    rows = [samples[int(i)] for i in cols["index"]]
    status = [str(s) for s in cols["status"]]
    ok = np.array([s == "ok" for s in status], dtype=bool)
    names = [n for n in ("embedding", "logits") if n in cols]
    arrays = {n: np.asarray(cols[n], np.float32)[ok] for n in names}
    failures = [Problem(s.path, st[len("error: "):]) for s, st, good in zip(rows, status, ok) if not good]
    cached = np.asarray(cols["cached"], bool)
    from_cache = frozenset(s.path for s, c in zip(rows, cached) if c)
    done = Done([s for s, good in zip(rows, ok) if good], arrays, failures,
                computed=int((ok & ~cached).sum()), cached=int((ok & cached).sum()), from_cache=from_cache)
    return rows, done
