"""Many views of one decode: each image read, bounded and hashed once, the cache looked up for every
view, and decoded once only if some view misses; every missing view is cut from that one decode.

The views are ``(function, view_key)`` pairs as :class:`~.batch.EmbedBatch` takes one (a tile of the
image, its inversion; ``None`` the plain image). Keys, decoding, preprocessing, batching and storing
are :class:`~.batch.EmbedBatch`'s own, so each view's features and cache entries are exactly those
of a one-view extraction with that view (``extract_features(..., view=fn, view_key=key)``).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ...io.media_ref import media_of
from ...io.sources import Problem, Sample
from ..cache import feature_key
from .media_frames import Pick, decode_group
from .reads import Done, guarded, read_hashed


@dataclass
class ViewsPrepared:
    """One chunk after reading and the cache look-up: ``keys[i]`` the keys of ``samples[i]``'s views
    (None: the file could not be read), ``todo`` the decodes under way."""

    samples: list
    keys: list
    hits: dict
    failures: list  # files that could not be read: one problem each, whatever the number of views
    todo: list  # (sample, [(view index, key)] of its missing views, future or [(array, error)] per missing view)


class _Group(tuple):
    """The frames of one file in a chunk: decoded by one task."""


class MultiViewBatch:
    """The chunk steps of :class:`~.batch.EmbedBatch` (``prepare``, ``finish``) over several views.

    ``fn``: an :class:`~.batch.EmbedBatch` (its model, engine, cache, limits; its own view is not
    used); ``views``: ``[(function or None, view_key), ...]``. One view is what ``EmbedBatch.prepare``
    and ``finish`` run: extraction has one way to read, decode and store an image.
    """

    def __init__(self, fn, views: list):  # fn: an EmbedBatch (batch.py runs its one view through this class)
        if len({key for _, key in views}) != len(views):
            raise ValueError(f"each view needs its own view_key: got {[key for _, key in views]}")
        self.fn, self.views = fn, list(views)

    def _keys(self, sample: Sample, data, digest: str, small):
        tiny, suffix = self.fn.key_parts(sample, data, small)
        fp = self.fn.fingerprint
        return [feature_key(digest, fp, key + suffix) for _, key in self.views], tiny

    def prepare(self, samples: list[Sample], pool: ThreadPoolExecutor | None = None) -> ViewsPrepared:
        """Read and hash ``samples`` once, look every view of every one up in the cache, and start
        one decode per image with a missing view (one pass per video / DICOM / TIFF file)."""
        fn = self.fn
        reads = list(pool.map(read_hashed, samples)) if pool else [read_hashed(s) for s in samples]
        small = fn.small_config()
        keys, tinies, failures = [], [], []
        for s, (data, digest, err) in zip(samples, reads):
            if err:
                failures.append(Problem(s.path, err))
                keys.append(None)
                tinies.append(None)
            else:
                k, tiny = self._keys(s, data, digest, small)
                keys.append(k)
                tinies.append(tiny)
        hits = fn.store.get_many([k for ks in keys if ks for k in ks], expect=fn.output_dims())
        todo, groups, missing_of = [], {}, {}
        for s, ks, (data, _, _), tiny in zip(samples, keys, reads, tinies):
            missing = [(v, k) for v, k in enumerate(ks or []) if k not in hits]
            if not missing:
                continue
            ref = media_of(s.path)
            if ref is not None and ref.kind != "image":
                group = _Group((ref.file, id(s.data)))
                groups.setdefault(group, []).append(s)
                missing_of[id(s)] = [v for v, _ in missing]
                todo.append((s, missing, group))
            else:
                args = (data, tiny, ref.window if ref is not None else None, [v for v, _ in missing])
                todo.append((s, missing, pool.submit(self._decode, *args) if pool else self._decode(*args)))

        def frame(sample, pixels):  # a frame's missing views, cut from its one decode
            return self._frame(sample, pixels, missing_of[id(sample)])

        runs = {g: pool.submit(decode_group, m, frame) if pool else decode_group(m, frame) for g, m in groups.items()}
        todo = [(s, m, Pick(runs[t], s.path.frame) if isinstance(t, _Group) else t) for s, m, t in todo]
        return ViewsPrepared(samples, keys, hits, failures, todo)

    def _decode(self, data: bytes, small, window, views: list[int]) -> list[tuple]:
        """One decode of ``data`` -> ``[(input, error)]`` for each view index in ``views``."""
        img, err = guarded(lambda: self.fn.decoded(data, small, window), "cannot decode image")
        if img is None:
            return [(None, err)] * len(views)
        return self.fn.view_inputs(img, small, [self.views[v][0] for v in views])

    def _frame(self, sample: Sample, pixels, views: list[int]) -> tuple:
        """A decoded frame -> (``[(input, error)]`` per view index in ``views``, None) or
        (None, why the frame cannot be used)."""
        found, err = guarded(lambda: self.fn.frame_image(sample, pixels), "cannot prepare the frame")
        if found is None:
            return None, err
        return self.fn.view_inputs(found[0], found[1], [self.views[v][0] for v in views], "cannot prepare the frame"), None

    def finish(self, p: ViewsPrepared) -> list[Done]:
        """Encode every missing view of the chunk in the engine's batches, store them, and gather
        one :class:`~.reads.Done` per view (its failures: the unread files and that view's)."""
        good, failed, made = [], [[] for _ in self.views], [set() for _ in self.views]
        for s, missing, task in p.todo:
            out = task.result() if hasattr(task, "result") else task
            if isinstance(out, tuple):  # a frame: (per-view results, None) or (None, its error)
                out = out[0] if out[0] is not None else [(None, out[1])] * len(missing)
            for (v, key), (x, err) in zip(missing, out):
                if x is None:
                    failed[v].append(Problem(s.path, err))
                else:
                    good.append((s, key, x))
                    made[v].add(key)
        fresh = self.fn.encode(good)
        self.fn.store.put_many(fresh)
        return [self.fn.gather(p.samples, [ks[v] if ks else None for ks in p.keys], p.hits,
                               {k: fresh[k] for k in made[v] if k in fresh}, p.failures + failed[v])
                for v in range(len(self.views))]
