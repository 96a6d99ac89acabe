"""The micro-batcher on its own: batch sizes, waiting, isolation of failures, withdrawn items."""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from wordsight.serve import Batching, Limits, MicroBatcher, ServeSettings


def run_batcher(fn, batching, body):
    async def main():
        with ThreadPoolExecutor(1) as pool:
            b = MicroBatcher(fn, batching, pool, "test")
            b.start()
            try:
                return await body(b)
            finally:
                await b.stop()

    return asyncio.run(main())


def test_concurrent_items_are_gathered_up_to_max_batch():
    calls = []

    def fn(items):
        calls.append(list(items))
        return [x * 10 for x in items]

    async def body(b):
        return await asyncio.gather(*(b.submit([i]) for i in range(10)))

    out = run_batcher(fn, Batching(max_batch=4, max_wait_ms=200), body)
    assert out == [[i * 10] for i in range(10)]
    assert [len(c) for c in calls] == [4, 4, 2]
    assert sorted(x for c in calls for x in c) == list(range(10))


def test_a_lone_item_waits_at_most_max_wait_ms():
    def fn(items):
        return items

    async def body(b):
        t = time.perf_counter()
        await b.submit(["x"])
        return time.perf_counter() - t

    assert run_batcher(fn, Batching(max_batch=64, max_wait_ms=50), body) < 1.0


def test_a_request_with_several_items_gets_them_back_in_order():
    def fn(items):
        return [s.upper() for s in items]

    async def body(b):
        return await asyncio.gather(b.submit(["a", "b", "c"]), b.submit(["d"]))

    assert run_batcher(fn, Batching(max_batch=2, max_wait_ms=20), body) == [["A", "B", "C"], ["D"]]


def test_an_item_that_breaks_the_batch_fails_alone():
    def fn(items):
        if "poison" in items:
            raise ValueError("cannot handle poison")
        return [f"ok:{x}" for x in items]

    async def body(b):
        return await asyncio.gather(*(b.submit([x]) for x in ["a", "poison", "b", "c"]), return_exceptions=True)

    out = run_batcher(fn, Batching(max_batch=8, max_wait_ms=100), body)
    assert out[0] == ["ok:a"] and out[2] == ["ok:b"] and out[3] == ["ok:c"]
    assert isinstance(out[1], ValueError) and "poison" in str(out[1])


def test_withdrawn_items_are_not_run():
    seen = []
    gate = threading.Event()

    def fn(items):
        seen.extend(items)
        gate.wait(5)
        return items

    async def body(b):
        first = asyncio.ensure_future(b.submit(["first"]))
        await asyncio.sleep(0.2)  # "first" is now running and holds the model thread
        late = asyncio.ensure_future(b.submit(["late"]))
        await asyncio.sleep(0.05)
        late.cancel()  # e.g. the request timed out
        gate.set()
        await first
        await b.submit(["after"])
        return late.cancelled()

    assert run_batcher(fn, Batching(max_batch=8, max_wait_ms=0), body)
    assert seen == ["first", "after"]


def test_settings_validate_and_round_trip():
    s = ServeSettings(model_dir="m", limits=Limits(max_images=3), batching=Batching(max_batch=2), api_key_env="K")
    assert ServeSettings.from_json(s.to_json()) == s
    assert Limits().max_upload_bytes == 20 * 2**20 and Limits().max_pixels == 40_000_000
    assert Limits().max_images == 32 and Limits().timeout_s == 30
    with pytest.raises(ValueError, match="max_images"):
        Limits(max_images=0)
    with pytest.raises(ValueError, match="max_batch"):
        Batching(max_batch=0)



@pytest.mark.parametrize("withdrawn", ["b", "a", "d"])
def test_a_request_withdrawn_from_a_waiting_batch_leaves_every_other_its_own_answer(withdrawn):
    # "first" holds the model thread while a, b, c, d queue into one batch; one of them is cancelled
    # (its request timed out) before that batch runs: it must leave the batch entirely, and every
    # other request must get the answer computed from its own item
    calls = []
    gate = threading.Event()

    def fn(items):
        calls.append(list(items))
        if items[0] == "first":
            gate.wait(5)
        return [f"ok:{x}" for x in items]

    async def body(b):
        first = asyncio.ensure_future(b.submit(["first"]))
        await asyncio.sleep(0.2)
        tasks = {x: asyncio.ensure_future(b.submit([x])) for x in "abcd"}
        await asyncio.sleep(0.05)
        tasks[withdrawn].cancel()
        gate.set()
        await first
        done = await asyncio.wait_for(asyncio.gather(*(t for x, t in tasks.items() if x != withdrawn)), 5)
        return dict(zip([x for x in tasks if x != withdrawn], done))

    out = run_batcher(fn, Batching(max_batch=8, max_wait_ms=50), body)
    assert out == {x: [f"ok:{x}"] for x in "abcd" if x != withdrawn}
    assert calls == [["first"], [x for x in "abcd" if x != withdrawn]]


def test_a_request_cancelled_while_its_batch_runs_leaves_the_others_their_answers():
    # cancelled mid-batch: the model already has its item; the others' results still go to them
    gate = threading.Event()
    started = threading.Event()

    def fn(items):
        started.set()
        gate.wait(5)
        return [x * 10 for x in items]

    async def body(b):
        tasks = [asyncio.ensure_future(b.submit(items)) for items in ([1, 2], [3], [4, 5])]
        while not started.is_set():
            await asyncio.sleep(0.01)
        tasks[1].cancel()
        gate.set()
        got = await asyncio.wait_for(asyncio.gather(tasks[0], tasks[2]), 5)
        after = await asyncio.wait_for(b.submit([6]), 5)  # the batcher still serves
        return got, after, tasks[1].cancelled()

    got, after, cancelled = run_batcher(fn, Batching(max_batch=8, max_wait_ms=50), body)
    assert got == [[10, 20], [40, 50]] and after == [60] and cancelled


def test_a_failing_item_in_a_shared_batch_fails_only_its_request_and_keeps_the_order():
    # several requests of several items share a batch; one item breaks it: the retry one by one
    # gives each request its own results, in its own order, and only the broken one fails
    def fn(items):
        if "bad" in items:
            raise ValueError("bad item")
        return [x.upper() for x in items]

    async def body(b):
        return await asyncio.wait_for(asyncio.gather(b.submit(["a", "b"]), b.submit(["c", "bad"]), b.submit(["d"]),
                                                     return_exceptions=True), 5)

    out = run_batcher(fn, Batching(max_batch=8, max_wait_ms=100), body)
    assert out[0] == ["A", "B"] and out[2] == ["D"]
    assert isinstance(out[1], ValueError)


def test_metrics_count_each_model_call_its_images_and_its_time():
    from wordsight.serve.prometheus import ServerMetrics

    metrics = ServerMetrics()

    def fn(items):
        time.sleep(0.05)
        return items

    async def main():
        with ThreadPoolExecutor(1) as pool:
            b = MicroBatcher(fn, Batching(max_batch=4, max_wait_ms=200), pool, "enc", metrics)
            b.start()
            try:
                return await asyncio.gather(*(b.submit([i]) for i in range(10)))
            finally:
                await b.stop()

    assert asyncio.run(main()) == [[i] for i in range(10)]
    assert metrics.batch_size.count("enc") == 3 and metrics.batch_size._series[("enc",)][-2] == 10
    assert metrics.images.value("enc") == 10 and metrics.images.value("model") == 0
    assert metrics.model_seconds.count("enc") == 3
    assert 0.15 <= metrics.model_seconds._series[("enc",)][-2] < 5


def test_a_batcher_not_started_refuses_and_a_stopped_one_fails_what_still_waits():
    # stop() with one request on the model thread and one in the queue
    gate = threading.Event()

    def fn(items):
        gate.wait(5)
        return items

    async def main():
        with ThreadPoolExecutor(1) as pool:
            b = MicroBatcher(fn, Batching(max_batch=1, max_wait_ms=0), pool, "x")
            with pytest.raises(RuntimeError, match="batcher 'x' is not started"):
                await b.submit([1])
            b.start()
            running = asyncio.ensure_future(b.submit(["running"]))
            await asyncio.sleep(0.1)
            waiting = asyncio.ensure_future(b.submit(["waiting"]))
            await asyncio.sleep(0.05)
            await b.stop()
            gate.set()
            out = await asyncio.wait_for(asyncio.gather(running, waiting, return_exceptions=True), 5)
            return out

    # both answered at once (the one on the model thread too: it used to wait for ever)
    running, waiting = asyncio.run(main())
    for out in (running, waiting):
        assert isinstance(out, RuntimeError) and str(out) == "the server is shutting down"


def test_stop_before_start_or_before_any_batch_and_submit_after_stop():
    async def main():
        with ThreadPoolExecutor(1) as pool:
            b = MicroBatcher(lambda items: items, Batching(max_batch=2, max_wait_ms=0), pool, "m")
            await b.stop()  # never started: nothing to do
            b.start()
            await b.stop()  # started, no batch ever ran
            with pytest.raises(RuntimeError, match="batcher 'm' is not started"):
                await b.submit([1])  # a stopped batcher takes nothing it would never answer
            b.start()  # and can start again
            return await asyncio.wait_for(b.submit([1, 2, 3]), 5)

    assert asyncio.run(main()) == [1, 2, 3]


def test_items_arriving_within_max_wait_share_the_first_items_batch():
    # the second request comes 100 ms after the first: within max_wait_ms (600) it joins the batch,
    # after it (a batcher that does not wait) it would run alone
    calls = []

    def fn(items):
        calls.append(list(items))
        return items

    async def body(b):
        first = asyncio.ensure_future(b.submit(["a"]))
        await asyncio.sleep(0.1)
        return await asyncio.gather(first, b.submit(["b"]))

    out = run_batcher(fn, Batching(max_batch=8, max_wait_ms=600), body)
    assert out == [["a"], ["b"]] and calls == [["a", "b"]]


def test_a_lone_item_that_raises_fails_its_request_with_the_error():
    def fn(items):
        raise ValueError(f"cannot handle {items[0]}")

    async def body(b):
        return await asyncio.wait_for(asyncio.gather(b.submit(["x"]), return_exceptions=True), 5)

    (out,) = run_batcher(fn, Batching(max_batch=1, max_wait_ms=0), body)
    assert isinstance(out, ValueError) and str(out) == "cannot handle x"
