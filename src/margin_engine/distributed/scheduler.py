"""The ``--scheduler`` spec and a Dask client for it: ``local[:N]`` or ``tcp://HOST:PORT``."""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from margin_engine.errors import InputError

if TYPE_CHECKING:
    from distributed import Client

#: Seconds to wait for a ``tcp://`` scheduler to answer and to have a worker.
CONNECT_TIMEOUT_S = 10.0
MAX_LOCAL_WORKERS = 256
_SPEC = "expected local, local:N (N workers) or tcp://HOST:PORT"
_TCP = re.compile(r"tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})")


@dataclass(frozen=True)
class SchedulerSpec:
    """Where partitions run: a local cluster of ``workers`` processes, or ``address``."""

    workers: int | None = None
    address: str | None = None

    def __str__(self) -> str:
        return self.address or f"local:{self.workers}"


def parse_scheduler(spec: str) -> SchedulerSpec:
    """Parse ``local``, ``local:N`` or ``tcp://HOST:PORT``.

    ``local`` alone starts one worker per CPU. Raises :class:`InputError` at ``--scheduler``.
    """
    s = spec.strip()
    if s == "local":
        return SchedulerSpec(workers=max(1, os.cpu_count() or 1))
    if s.startswith("local:"):
        n = s.removeprefix("local:")
        if not n.isdigit() or not 1 <= int(n) <= MAX_LOCAL_WORKERS:
            raise InputError("--scheduler", f"local:N needs a worker count from 1 to "
                             f"{MAX_LOCAL_WORKERS}, got {n!r}")
        return SchedulerSpec(workers=int(n))
    m = _TCP.fullmatch(s)
    if m is None:
        raise InputError("--scheduler", f"{_SPEC}, got {spec!r}")
    if not 1 <= int(m["port"]) <= 65535:
        raise InputError("--scheduler", f"port must be 1..65535, got {m['port']}")
    return SchedulerSpec(address=s)


@contextmanager
def connect(spec: SchedulerSpec, *, timeout_s: float | None = None) -> Iterator[Client]:
    """A client on ``spec``: a fresh LocalCluster (closed on exit) or a running scheduler.

    Raises :class:`InputError` at ``--scheduler`` when the scheduler cannot be reached, or has
    no worker, within ``timeout_s`` (default :data:`CONNECT_TIMEOUT_S`).
    """
    import dask

    from distributed import Client, LocalCluster

    timeout = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
    if spec.address is None:
        with dask.config.set({"distributed.worker.multiprocessing-method": _start_method()}), \
                LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True,
                             host="127.0.0.1", dashboard_address=None,
                             scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                             silence_logs=logging.CRITICAL) as cluster, \
                Client(cluster) as client:
            yield client
        return
    for name in ("distributed.client", "distributed.core", "distributed.comm.tcp"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # a refusal is reported once, below
    try:
        client = Client(spec.address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise InputError("--scheduler", f"cannot reach {spec.address} within {timeout:g} s "
                         f"({type(exc).__name__})") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            raise InputError("--scheduler", f"{spec.address} has no worker after "
                             f"{timeout:g} s") from None
        yield client


#: Imported once by the fork server; every local worker is forked from it, ready to work.
#: ``__main__`` (the standard default) keeps each worker from importing the main script again.
PRELOAD = ["__main__", "distributed", "margin_engine.distributed.assess"]


def _start_method() -> str:
    """``forkserver`` with the engine preloaded where the platform has it, else ``spawn``.

    Spawned workers each import the engine and Dask afresh (about 6 s for two workers on two
    cores, measured); forking from a clean preloaded server takes the import once. Plain
    ``fork`` is not safe once this process has run a numba parallel kernel (GNU OpenMP).
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD)
    return "forkserver"
