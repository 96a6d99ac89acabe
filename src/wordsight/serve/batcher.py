"""Micro-batching: gather the images of concurrent requests into one model call.

Requests put their items on a queue and await one future per item. A single collector task takes
the first waiting item, then keeps taking items until the batch holds ``max_batch`` of them or
``max_wait_ms`` have passed since the first, and runs the batch function on the model thread.
While the model runs, new items queue up, so under load batches fill without waiting at all.

The batch function is synchronous (``fn(items) -> results``, one result per item, in order) and
runs on one thread shared by every batcher of the process: the model code is never entered by
two threads at once, and torch / ONNX Runtime use the CPU cores inside each call.

A batch whose function raises is retried one item at a time, so that an input that breaks the
model fails only its own request, never the requests that happened to share its batch.
"""
from __future__ import annotations

import asyncio
import time
from concurrent.futures import Executor
from typing import Any, Callable, Sequence

from .settings import Batching


class MicroBatcher:
    """One queue and one collector task for one batch function (``name`` labels its metrics)."""

    def __init__(self, fn: Callable[[list], Sequence], batching: Batching, executor: Executor,
                 name: str = "model", metrics=None):
        self.fn, self.batching, self.executor, self.name, self.metrics = fn, batching, executor, name, metrics
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._running: list = []  # the (item, future) pairs of the batch on the model thread now

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the collector on the running event loop (the app's lifespan calls this)."""
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._collect(), name=f"batcher-{self.name}")

    async def stop(self) -> None:
        """Cancel the batching loop and wait for it to end."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        waiting = list(self._running)  # a batch cut off on the model thread: its results never arrive
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for _, fut in waiting:
            if not fut.done():
                fut.set_exception(RuntimeError("the server is shutting down"))
        self._running = []

    # ------------------------------------------------------------------ use
    async def submit(self, items: list) -> list:
        """Results for ``items`` (one request's images), computed in whatever batches they land in.
        Cancelling the caller (a request timeout) withdraws its items that have not run yet."""
        if self._task is None:
            raise RuntimeError(f"batcher {self.name!r} is not started")
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in items]
        for item, fut in zip(items, futures):
            self._queue.put_nowait((item, fut))
        try:
            return list(await asyncio.gather(*futures))
        except BaseException:
            for fut in futures:
                fut.cancel()
            raise

    # ------------------------------------------------------------------ the collector
    async def _next_batch(self) -> list:
        q = self._queue
        batch = [await q.get()]
        limit = self.batching.max_batch
        deadline = time.monotonic() + self.batching.max_wait_ms / 1000.0
        while len(batch) < limit:
            if not q.empty():
                batch.append(q.get_nowait())
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(q.get(), left))
            except asyncio.TimeoutError:
                break
        return [(item, fut) for item, fut in batch if not fut.done()]  # drop withdrawn items

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            items = [item for item, _ in batch]
            self._running = batch
            outcomes = await loop.run_in_executor(self.executor, self._run, items)
            self._running = []
            for (_, fut), (ok, value) in zip(batch, outcomes):
                if fut.done():
                    continue
                if ok:
                    fut.set_result(value)
                else:
                    fut.set_exception(value)

    def _run(self, items: list) -> list[tuple[bool, Any]]:
        """On the model thread: the batch at once, or item by item if the batch raised."""
        start = time.perf_counter()
        try:
            results = list(self.fn(items))
            if len(results) != len(items):
                raise RuntimeError(f"batch function returned {len(results)} results for {len(items)} items")
            outcomes = [(True, r) for r in results]
        except Exception as batch_error:
            if len(items) == 1:
                outcomes = [(False, batch_error)]
            else:
                outcomes = []
                for item in items:
                    try:
                        outcomes.append((True, self.fn([item])[0]))
                    except Exception as e:
                        outcomes.append((False, e))
        if self.metrics is not None:
            self.metrics.batch_size.observe(len(items), self.name)
            self.metrics.model_seconds.observe(time.perf_counter() - start, self.name)
            self.metrics.images.inc(self.name, amount=len(items))
        return outcomes
