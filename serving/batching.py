"""Adaptive batching without waiting: merge the requests that arrive while a batch runs.

Why not BentoML's batcher (``batchable=True``): its dispatcher holds a request back while
``n * age <= 0.95 * mean wait of the last 50 batches``, and the waits it then measures
feed that mean again. Whatever wait it once saw becomes self-sustaining: one client's
delivery estimate took 24.6 ms at p50 against 4.5 ms in-process (measured with it), and after a
32-client soak the 8-client p99 rose from 62 to 176 ms.

This batcher never waits on purpose. A call that finds the endpoint idle runs at once,
alone; calls that arrive while a batch runs queue, and the next batch takes all of them
(up to ``max_batch`` items). The batch size follows the load by itself: one at a time
for a lone client, several at once under concurrency, when merging saves the most.

Under overload the queue is bounded (``max_queue`` items waiting): a call that would
exceed it fails at once with :class:`Overloaded` (the service answers 503 with
``Retry-After``), so a burst costs the excess callers a quick retry instead of making
every caller's wait grow without limit.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any


class Overloaded(RuntimeError):
    """The queue is full: the caller should retry shortly."""


@dataclass
class _Job:
    items: Sequence[Any]
    future: asyncio.Future


@dataclass
class MicroBatcher:
    """Runs ``fn(items) -> results`` (one result per item) in a worker thread, one batch
    at a time, merging concurrent calls.

    ``observe(n)``, when given, is told each batch's size (for a metrics histogram).
    ``max_queue`` bounds the items waiting behind the running batch (None: unbounded);
    ``executor`` runs the batches (None: asyncio's default thread pool).
    An exception from ``fn`` fails every call of that batch; ``fn`` should handle
    per-item errors itself (``model_service.score`` turns them into ItemErrors).
    """

    fn: Callable[[list[Any]], Sequence[Any]]
    max_batch: int
    observe: Callable[[int], None] | None = None
    max_queue: int | None = None
    executor: Executor | None = None
    _queued_items: int = field(default=0, init=False, repr=False)
    _queue: deque[_Job] = field(default_factory=deque, init=False, repr=False)
    _running: bool = field(default=False, init=False, repr=False)
    _task: asyncio.Task | None = field(default=None, init=False, repr=False)

    async def submit(self, items: Sequence[Any]) -> list[Any]:
        """Score ``items`` (one call's requests) as part of the next batch."""
        if not items:
            return []
        # only calls that would wait are bounded: an idle endpoint takes any call at once
        waiting = self._queued_items + len(items)
        if self._running and self.max_queue is not None and waiting > self.max_queue:
            raise Overloaded(
                f"{self._queued_items} items already wait (limit {self.max_queue}); retry shortly"
            )
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(items, future))
        self._queued_items += len(items)
        if not self._running:
            self._running = True
            # keep a reference: the loop holds tasks only weakly
            self._task = asyncio.get_running_loop().create_task(self._drain())
        return await future

    def _take(self) -> list[_Job]:
        """The queued calls for one batch, skipping callers that have gone (cancelled,
        timed out); a call's items are never split, so a call larger than ``max_batch``
        (the schema forbids it) still runs, alone."""
        jobs: list[_Job] = []
        size = 0
        while self._queue:
            job = self._queue[0]
            if job.future.done():
                self._pop()
                continue
            if jobs and size + len(job.items) > self.max_batch:
                break
            jobs.append(self._pop())
            size += len(job.items)
        return jobs

    def _pop(self) -> _Job:
        job = self._queue.popleft()
        self._queued_items -= len(job.items)
        return job

    async def _drain(self) -> None:
        jobs: list[_Job] = []
        try:
            while self._queue:
                jobs = self._take()
                if not jobs:
                    continue
                flat = [item for job in jobs for item in job.items]
                try:
                    if self.observe is not None:
                        self.observe(len(flat))
                    loop = asyncio.get_running_loop()
                    # as asyncio.to_thread does: the caller's context (log and trace ids)
                    run = contextvars.copy_context().run
                    results = await loop.run_in_executor(self.executor, run, self.fn, flat)
                    if len(results) != len(flat):
                        raise RuntimeError(f"batch of {len(flat)} gave {len(results)} results")
                except Exception as err:  # every caller of this batch gets the error
                    _fail(jobs, err)
                    continue
                start = 0
                for job in jobs:
                    end = start + len(job.items)
                    if not job.future.done():  # a caller may have gone (cancelled)
                        job.future.set_result(list(results[start:end]))
                    start = end
                jobs = []
        except BaseException as err:  # cancelled at shutdown: nobody may wait forever
            _fail([*jobs, *self._queue], err)
            self._queue.clear()
            self._queued_items = 0
            raise
        finally:
            self._running = False


def _fail(jobs: list[_Job], err: BaseException) -> None:
    for job in jobs:
        if not job.future.done():
            if isinstance(err, asyncio.CancelledError):
                job.future.cancel()
            else:
                job.future.set_exception(err)
