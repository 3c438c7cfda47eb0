"""The no-wait adaptive batcher: merges concurrent calls, never delays a lone one."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ppx.config import PROJECT_ROOT


@pytest.fixture()
def MicroBatcher(monkeypatch):  # noqa: N802 - stands for the class it returns
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))  # serving/ sits beside the package
    from serving.batching import MicroBatcher

    return MicroBatcher


class Recorder:
    """A scoring function that records its batches and can be held until released."""

    def __init__(self) -> None:
        self.batches: list[list] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items: list) -> list:
        self.gate.wait(timeout=10)
        self.batches.append(list(items))
        return [f"scored {x}" for x in items]


def test_lone_call_runs_at_once_alone(MicroBatcher):
    rec = Recorder()
    sizes: list[int] = []
    b = MicroBatcher(rec, max_batch=8, observe=sizes.append)
    assert asyncio.run(b.submit([1])) == ["scored 1"]
    assert rec.batches == [[1]] and sizes == [1]


def test_calls_arriving_during_a_batch_are_merged_and_answered_in_order(MicroBatcher):
    rec = Recorder()
    b = MicroBatcher(rec, max_batch=8)

    async def main():
        rec.gate.clear()  # hold the first batch so the others queue behind it
        first = asyncio.create_task(b.submit(["a"]))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(b.submit([f"q{i}", f"r{i}"])) for i in range(3)]
        await asyncio.sleep(0.05)
        rec.gate.set()
        return await first, await asyncio.gather(*rest)

    first, rest = asyncio.run(main())
    assert first == ["scored a"]
    assert rest == [[f"scored q{i}", f"scored r{i}"] for i in range(3)]
    # one batch for the first call, one merged batch for the three that queued
    assert rec.batches == [["a"], ["q0", "r0", "q1", "r1", "q2", "r2"]]


def test_batches_respect_max_batch_without_splitting_a_call(MicroBatcher):
    rec = Recorder()
    b = MicroBatcher(rec, max_batch=4)

    async def main():
        rec.gate.clear()
        first = asyncio.create_task(b.submit([0]))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(b.submit([i, i])) for i in range(1, 4)]
        await asyncio.sleep(0.05)
        rec.gate.set()
        await first
        return await asyncio.gather(*rest)

    asyncio.run(main())
    assert [len(x) for x in rec.batches] == [1, 4, 2]


def test_an_error_reaches_every_call_of_its_batch_and_the_next_batch_still_runs(MicroBatcher):
    calls = {"n": 0}

    def flaky(items: list) -> list:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("model exploded")
        return items

    b = MicroBatcher(flaky, max_batch=8)

    async def main():
        with pytest.raises(RuntimeError, match="model exploded"):
            await b.submit([1])
        return await b.submit([2])

    assert asyncio.run(main()) == [2]


def test_a_wrong_number_of_results_is_an_error_not_a_misaligned_answer(MicroBatcher):
    b = MicroBatcher(lambda items: items[:-1], max_batch=8)
    with pytest.raises(RuntimeError, match="batch of 2 gave 1 results"):
        asyncio.run(b.submit([1, 2]))


def test_a_caller_that_has_gone_is_not_scored(MicroBatcher):
    rec = Recorder()
    b = MicroBatcher(rec, max_batch=8)

    async def main():
        rec.gate.clear()
        first = asyncio.create_task(b.submit(["a"]))
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(b.submit(["gone"]))
        kept = asyncio.create_task(b.submit(["kept"]))
        await asyncio.sleep(0.05)
        gone.cancel()  # e.g. the request timed out while queued
        rec.gate.set()
        return await first, await kept

    assert asyncio.run(main()) == (["scored a"], ["scored kept"])
    assert rec.batches == [["a"], ["kept"]]


def test_a_failing_metric_fails_the_calls_instead_of_leaving_them_waiting(MicroBatcher):
    def broken(n: int) -> None:
        raise ValueError("metrics backend down")

    b = MicroBatcher(lambda items: items, max_batch=8, observe=broken)
    with pytest.raises(ValueError, match="metrics backend down"):
        asyncio.run(b.submit([1]))


def test_a_full_queue_refuses_at_once_and_serves_what_it_holds(MicroBatcher):
    from serving.batching import Overloaded

    rec = Recorder()
    b = MicroBatcher(rec, max_batch=8, max_queue=3)

    async def main():
        rec.gate.clear()  # the running batch holds; later calls queue behind it
        first = asyncio.create_task(b.submit(["a"]))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(b.submit(["b", "c"]))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="limit 3"):
            await b.submit(["d", "e"])  # 2 waiting + 2 > 3
        squeezed = asyncio.create_task(b.submit(["f"]))  # 2 + 1 fits exactly
        await asyncio.sleep(0.01)
        rec.gate.set()
        out = await first, await queued, await squeezed
        # once drained, the queue accepts a full load again
        return out, await b.submit(["g", "h", "i"])

    (first, queued, squeezed), later = asyncio.run(main())
    assert (first, queued, squeezed) == (["scored a"], ["scored b", "scored c"], ["scored f"])
    assert later == ["scored g", "scored h", "scored i"]
    assert ["d", "e"] not in rec.batches and all("d" not in batch for batch in rec.batches)


def test_batches_run_on_the_given_executor(MicroBatcher):
    from concurrent.futures import ThreadPoolExecutor

    names: list[str] = []

    def fn(items):
        names.append(threading.current_thread().name)
        return items

    with ThreadPoolExecutor(1, thread_name_prefix="ppx-scoring") as pool:
        b = MicroBatcher(fn, max_batch=4, executor=pool)
        assert asyncio.run(b.submit([1, 2])) == [1, 2]
    assert names and names[0].startswith("ppx-scoring")


def test_an_idle_endpoint_takes_a_call_larger_than_the_queue_bound(MicroBatcher):
    rec = Recorder()
    b = MicroBatcher(rec, max_batch=8, max_queue=2)
    assert asyncio.run(b.submit([1, 2, 3, 4])) == [f"scored {i}" for i in range(1, 5)]


def test_a_cancelled_caller_frees_its_place_in_the_queue(MicroBatcher):
    from serving.batching import Overloaded

    rec = Recorder()
    b = MicroBatcher(rec, max_batch=8, max_queue=2)

    async def main():
        rec.gate.clear()
        first = asyncio.create_task(b.submit(["a"]))
        await asyncio.sleep(0.05)
        gone = asyncio.create_task(b.submit(["b", "c"]))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded):
            await b.submit(["d"])
        gone.cancel()
        rec.gate.set()
        await first
        # the cancelled call is skipped, never scored, and no longer counts
        return await b.submit(["e", "f"])

    assert asyncio.run(main()) == ["scored e", "scored f"]
    assert all("b" not in batch for batch in rec.batches)
    assert b._queued_items == 0
