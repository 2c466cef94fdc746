"""Running one piece of work per host across a fleet, concurrently and independently.

One host's failure never stops the others: every exception from a host's work becomes that
host's result. The pool size is ``--forks``; each worker owns one host at a time, so a host
never has more than the two sessions (Exchange + OS) its worker opens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Generic, TypeVar

H = TypeVar("H")
R = TypeVar("R")


class HostRun(Generic[H, R]):
    """The result of one host's work: a value, or the exception it raised."""

    __slots__ = ("error", "host", "value")

    def __init__(self, host: H, value: R | None, error: BaseException | None) -> None:
        self.host = host
        self.value = value
        self.error = error


def run_fleet(
    hosts: Sequence[H],
    work: Callable[[H], R],
    *,
    forks: int,
    on_done: Callable[[HostRun[H, R]], None] | None = None,
) -> list[HostRun[H, R]]:
    """Run ``work`` for every host with at most ``forks`` at once; results in input order.

    ``on_done`` is called from the calling thread as each host finishes (progress display).
    KeyboardInterrupt cancels the hosts not yet started and propagates.
    """
    if forks < 1:
        raise ValueError("forks must be at least 1")
    results: dict[int, HostRun[H, R]] = {}
    workers = min(forks, max(1, len(hosts)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="exfix-host") as pool:
        futures: dict[Future[R], int] = {pool.submit(work, host): index for index, host in enumerate(hosts)}
        try:
            for future in as_completed(futures):
                index = futures[future]
                error = future.exception()
                run: HostRun[H, R] = HostRun(hosts[index], None if error else future.result(), error)
                results[index] = run
                if on_done is not None:
                    on_done(run)
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            raise
    return [results[index] for index in range(len(hosts))]
