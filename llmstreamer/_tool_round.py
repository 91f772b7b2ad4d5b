"""The tool calls of one round: checked and confirmed in order, run concurrently, reported in order.

The engine's tool loop calls `run_calls` once per round and passes each result on as a
``tool_result`` event. With ``parallel`` on, every call is checked (and ``confirm_tool`` asked)
on the stream's worker thread first, in call order; the approved calls then run at the same time
on a small pool of threads made for the round, and their results come back in call order, so a
slow tool holds no other tool back and the callbacks still fire on the worker thread. A cancel
(or the total timeout) stops the waiting at once; a tool already running finishes on its pool
thread, and its result is dropped. Each tool runs with the stream's token as its thread's
`_cancel.current` token, so a tool that waits on a server (MCP) can stop and tell the server.
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from ._cancel import bound
from .models import ToolCall, ToolResult
from .tools import prepare

if TYPE_CHECKING:
    from ._cancel import CancelToken
    from .tools import Toolbox

__all__ = ["MAX_WORKERS", "run_calls"]

MAX_WORKERS = 8  # threads per round at most; more calls than this queue for a free thread
_round_ids = itertools.count(1)


def run_calls(
    calls: Sequence[ToolCall],
    toolbox: Toolbox,
    confirm: Callable[[ToolCall], Any] | None,
    token: CancelToken,
    *,
    provider: str,
    parallel: bool = True,
) -> Iterator[ToolResult]:
    """Yield the result of each call of one round, in call order.

    Sequentially (``parallel=False``) each call is confirmed, run and yielded before the next
    is looked at, as a plain loop would. In parallel, see the module docstring.

    Raises:
        LLMStreamError: the stream was cancelled (or ran out of time) while tools were running.
        CallbackError: ``confirm`` raised, as in `llmstreamer.tools.execute`.
    """
    if not parallel:
        for call in calls:
            yield _here(prepare(call, toolbox, confirm), token, provider)
        return
    prepared = [prepare(call, toolbox, confirm) for call in calls]
    runnable = [p for p in prepared if not isinstance(p, ToolResult)]
    if len(runnable) <= 1:  # nothing to overlap: run on the worker thread itself
        for ready in prepared:
            yield _here(ready, token, provider)
        return
    yield from _concurrently(prepared, min(len(runnable), MAX_WORKERS), token, provider)


def _here(ready: ToolResult | Callable[[], ToolResult], token: CancelToken, provider: str) -> ToolResult:
    """Run one prepared call on this thread; a cancel meanwhile drops its result, as in parallel."""
    if isinstance(ready, ToolResult):
        return ready
    result: ToolResult = bound(token, ready)
    if token.reason is not None:
        raise token.error(provider)
    return result


def _concurrently(
    prepared: list[ToolResult | Callable[[], ToolResult]], workers: int, token: CancelToken, provider: str
) -> Iterator[ToolResult]:
    wake = threading.Event()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"llmstreamer-tools-{next(_round_ids)}")
    token.attach(wake.set)
    try:
        started: list[ToolResult | Future[ToolResult]] = []
        for ready in prepared:
            if isinstance(ready, ToolResult):
                started.append(ready)
            else:
                future = pool.submit(bound, token, ready)
                future.add_done_callback(lambda _: wake.set())
                started.append(future)
        for item in started:
            if isinstance(item, ToolResult):
                yield item
                continue
            while True:
                wake.clear()  # cleared before the checks, so a wake-up after them is not lost
                if token.reason is not None:  # first: a tool that stops because of the cancel
                    raise token.error(provider)  # finishes at once, and its result is not news
                if item.done():
                    break
                wake.wait(1.0)
            yield item.result()  # never raises: a prepared call turns exceptions into error results
    finally:
        token.detach(wake.set)
        pool.shutdown(wait=False, cancel_futures=True)
