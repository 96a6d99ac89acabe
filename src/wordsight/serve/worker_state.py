"""What one worker process holds (settings, the loaded :class:`~.predictor.Predictor`, its
batchers, metrics) and its start-up and shut-down (the app's lifespan)."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from .batcher import MicroBatcher
from .predictor import Predictor
from .prometheus import ServerMetrics
from .settings import Batching, ServeSettings


class ServeState:
    """What one worker process holds: settings, the loaded pipeline, its batchers, metrics."""

    def __init__(self, settings: ServeSettings):
        self.settings = settings
        self.api_key = settings.resolved_api_key()
        self.metrics = ServerMetrics()
        self.executor: ThreadPoolExecutor | None = None
        self.predictor: Predictor | None = None
        self.predict_batcher: MicroBatcher | None = None
        self.concepts_batcher: MicroBatcher | None = None
        self.explain_batcher: MicroBatcher | None = None
        self.ready = False
        self.startup_error: str | None = None

    def start_batchers(self) -> None:
        p, b = self.predictor, self.settings.batching
        if p.has_model:
            self.predict_batcher = MicroBatcher(p.predict_batch, b, self.executor, "classifier", self.metrics)
        if p.zero_shot_error is None:
            self.concepts_batcher = MicroBatcher(p.concepts_batch, b, self.executor, "zero-shot", self.metrics)
        if p.explain_error is None:  # one image per call: an explanation is a backward pass each
            self.explain_batcher = MicroBatcher(p.explain_batch, Batching(max_batch=1, max_wait_ms=0),
                                                self.executor, "explain", self.metrics)
        for batcher in self.batchers():
            batcher.start()

    def batchers(self) -> list[MicroBatcher]:
        return [b for b in (self.predict_batcher, self.concepts_batcher, self.explain_batcher) if b is not None]


def lifespan(state: ServeState):
    """Load the model (once per worker, on the model thread), warm it up, start the batchers; stop them at the end."""
    @asynccontextmanager
    async def run(app):
        loop = asyncio.get_running_loop()
        state.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="wordsight-model")
        try:
            state.predictor = await loop.run_in_executor(state.executor, Predictor, state.settings)
            if state.settings.warm_up:
                await loop.run_in_executor(state.executor, state.predictor.warm_up)
            state.start_batchers()
            state.ready = True
            yield
        except Exception as e:
            what = state.settings.model_dir or "zero-shot"
            state.startup_error = f"wordsight serve: cannot start ({what}): {e}".splitlines()[0]
            raise
        finally:
            state.ready = False
            for batcher in state.batchers():
                await batcher.stop()
            state.executor.shutdown(wait=False, cancel_futures=True)

    return run
