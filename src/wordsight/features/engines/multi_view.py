"""Many views of one decode: each image read, bounded and hashed once, the cache looked up for every
view, and decoded once only if some view misses; every missing view is cut from that one decode.

The views are ``(function, view_key)`` pairs as :class:`~.batch.EmbedBatch` takes one (a tile of the
image, its inversion; ``None`` the plain image). Keys, decoding, preprocessing, batching and storing
are :class:`~.batch.EmbedBatch`'s own, so each view's features and cache entries are exactly those
of a one-view extraction with that view (``extract_features(..., view=fn, view_key=key)``).

Several models (:meth:`MultiViewBatch.of_models`: a global encoder, ``tiles:N:`` and a tile bag's
inner encoder) share the read and the decode too: the image is decoded once per distinct decoding
they ask for (:func:`~.shared_decode.decode_keys`: the same JPEG draft scale and pixel limit, one
decode), so each model's entries stay exactly its own extraction's.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ...io.media_ref import media_of
from ...io.sources import Problem, Sample
from ..cache import feature_key
from .media_frames import Pick, decode_group
from .reads import Done, guarded, read_hashed
from .shared_decode import decode_keys


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
    and ``finish`` run: extraction has one way to read, decode and store an image. The views of
    several models: :meth:`of_models`; view ``j`` is then the ``j``-th of all models' views in order.
    """

    def __init__(self, fn, views: list):  # fn: an EmbedBatch (batch.py runs its one view through this class)
        self.parts: list = []  # the EmbedBatch of each model
        self.slots: list[tuple] = []  # (model index, view function, view_key) of every view, model by model
        self.add(fn, views)

    @classmethod
    def of_models(cls, parts: list) -> "MultiViewBatch":
        """The views of several models, ``[(EmbedBatch, views), ...]``, from one read and one decode
        of each image (per distinct decoding the models ask for)."""
        many = cls(*parts[0])
        for fn, views in parts[1:]:
            many.add(fn, views)
        return many

    def add(self, fn, views: list) -> None:
        """Add the views ``[(function or None, view_key)]`` of the model ``fn`` (an EmbedBatch)."""
        if len({key for _, key in views}) != len(views):
            raise ValueError(f"each view needs its own view_key: got {[key for _, key in views]}")
        self.parts.append(fn)
        self.slots += [(len(self.parts) - 1, view, key) for view, key in views]

    @property
    def views(self) -> list:
        """``(function, view_key)`` of every view, model by model."""
        return [(view, key) for _, view, key in self.slots]

    def _keys(self, sample: Sample, data, digest: str, smalls: list, fps: list):
        found = [fn.key_parts(sample, data, small) for fn, small in zip(self.parts, smalls)]
        keys = [feature_key(digest, fps[p], key + found[p][1]) for p, _, key in self.slots]
        return keys, [tiny for tiny, _ in found]

    def prepare(self, samples: list[Sample], pool: ThreadPoolExecutor | None = None) -> ViewsPrepared:
        """Read and hash ``samples`` once, look every view of every one up in the cache, and start
        one decode per image with a missing view (one pass per video / DICOM / TIFF file)."""
        reads = list(pool.map(read_hashed, samples)) if pool else [read_hashed(s) for s in samples]
        smalls, fps = [fn.small_config() for fn in self.parts], [fn.fingerprint for fn in self.parts]
        keys, tinies, failures = [], [], []
        for s, (data, digest, err) in zip(samples, reads):
            if err:
                failures.append(Problem(s.path, err))
                keys.append(None)
                tinies.append(None)
            else:
                k, tiny = self._keys(s, data, digest, smalls, fps)
                keys.append(k)
                tinies.append(tiny)
        hits = self._look_up(keys)
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

    def inputs(self, sample: Sample, data: bytes, window=None) -> list[tuple]:
        """The model input of every view of the image ``data`` (read from ``sample``), ``[(array,
        error)]`` in view order, from one decode per distinct decoding the models ask for: what
        :meth:`prepare` decodes for a miss, without the cache (the anomaly detector's patches)."""
        tinies = [fn.key_parts(sample, data, fn.small_config())[0] for fn in self.parts]
        return self._decode(data, tinies, window, list(range(len(self.slots))))

    def _look_up(self, keys: list) -> dict:
        """The cache's entries of ``keys`` (per sample, per view), each model's checked for its widths."""
        hits: dict = {}
        for p, fn in enumerate(self.parts):
            mine = [v for v, slot in enumerate(self.slots) if slot[0] == p]
            hits.update(fn.store.get_many([ks[v] for ks in keys if ks for v in mine], expect=fn.output_dims()))
        return hits

    def _by_model(self, views: list[int]) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for v in views:
            out.setdefault(self.slots[v][0], []).append(v)
        return out

    def _decode(self, data: bytes, tinies: list, window, views: list[int]) -> list[tuple]:
        """One decode of ``data`` (per distinct decoding the models ask for) -> ``[(input, error)]``
        for each view index in ``views``."""
        by_model = self._by_model(views)
        ways = decode_keys(data, {p: self.parts[p].decoding(tinies[p]) for p in by_model})
        images, out = {}, {}
        for p, mine in by_model.items():
            fn, small = self.parts[p], tinies[p]
            if ways[p] not in images:
                images[ways[p]] = guarded(lambda: fn.decoded(data, small, window), "cannot decode image")
            img, err = images[ways[p]]
            made = [(None, err)] * len(mine) if img is None else fn.view_inputs(img, small, self._fns(mine))
            out.update(zip(mine, made))
        return [out[v] for v in views]

    def _fns(self, views: list[int]) -> list:
        return [self.slots[v][1] for v in views]

    def _frame(self, sample: Sample, pixels, views: list[int]) -> tuple:
        """A decoded frame -> (``[(input, error)]`` per view index in ``views``, None) or
        (None, why the frame cannot be used)."""
        out = {}
        for p, mine in self._by_model(views).items():
            fn = self.parts[p]
            found, err = guarded(lambda: fn.frame_image(sample, pixels), "cannot prepare the frame")
            if found is None:
                return None, err
            out.update(zip(mine, fn.view_inputs(found[0], found[1], self._fns(mine), "cannot prepare the frame")))
        return [out[v] for v in views], None

    def finish(self, p: ViewsPrepared) -> list[Done]:
        """Encode every missing view of the chunk in each model's batches, store them, and gather
        one :class:`~.reads.Done` per view (its failures: the unread files and that view's)."""
        good, failed, made = [[] for _ in self.parts], [[] for _ in self.slots], [set() for _ in self.slots]
        for s, missing, task in p.todo:
            out = task.result() if hasattr(task, "result") else task
            if isinstance(out, tuple):  # a frame: (per-view results, None) or (None, its error)
                out = out[0] if out[0] is not None else [(None, out[1])] * len(missing)
            for (v, key), (x, err) in zip(missing, out):
                if x is None:
                    failed[v].append(Problem(s.path, err))
                else:
                    good[self.slots[v][0]].append((s, key, x))
                    made[v].add(key)
        fresh: dict = {}
        for fn, items in zip(self.parts, good):
            if items:
                mine = fn.encode(items)
                fn.store.put_many(mine)
                fresh.update(mine)
        return [self.parts[m].gather(p.samples, [ks[v] if ks else None for ks in p.keys], p.hits,
                                     {k: fresh[k] for k in made[v] if k in fresh}, p.failures + failed[v])
                for v, (m, _, _) in enumerate(self.slots)]
