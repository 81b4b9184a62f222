"""A book assessed on Dask: partitions of accounts, one broadcast, results in book order."""

from __future__ import annotations

import re
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from margin_engine.domain.book import Account, Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.models.core.base import MarginModel
from margin_engine.policy.assess import AccountReport, BandSolver, assess_book, prepare_book
from margin_engine.policy.health import HealthPolicy

from .partition import balanced_bounds
from .scheduler import connect, parse_scheduler

if TYPE_CHECKING:
    from distributed import Client

#: Partitions per worker thread: enough to even out uneven accounts, few enough that the
#: per-partition costs stay small (bench/bench_dask.py: on an even book, 2 workers, 2
#: partitions beat 8).
PARTITIONS_PER_WORKER = 2
_ACCOUNT = re.compile(r"accounts\[(\d+)\]")


@dataclass(frozen=True)
class Context:
    """What every partition needs, broadcast once as one object (so the model's cached P&L
    and the market stay the same object on the worker)."""

    model: MarginModel
    market: MarketSnapshot
    policy: HealthPolicy | None
    liquidation_prices: bool
    band_solver: BandSolver | None = None


@dataclass(frozen=True)
class PartitionResult:
    """A partition's reports, or the problems of its first bad account, and the wall and CPU
    seconds its assessment took on the worker."""

    reports: list[AccountReport]
    problems: tuple[tuple[str, str], ...]
    seconds: float
    cpu_seconds: float


def assess_partition(ctx: Context, accounts: tuple[Account, ...]) -> PartitionResult:
    """Run on a worker: the single-process :func:`assess_book` over one partition."""
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        reports = assess_book(ctx.model, Book.model_construct(accounts=accounts), ctx.market,
                              policy=ctx.policy, liquidation_prices=ctx.liquidation_prices,
                              band_solver=ctx.band_solver)
    except InputError as exc:  # InputError does not pickle: send its problems
        reports, problems = [], exc.problems
    else:
        problems = ()
    return PartitionResult(reports, problems, time.perf_counter() - t0,
                           time.thread_time() - c0)


def broadcast_model(model: MarginModel, book: Book, market: MarketSnapshot) -> MarginModel:
    """The model as shipped: prepared for the whole ``book`` here, once
    (:meth:`~margin_engine.models.core.base.MarginModel.prepare` — the risk-based family keeps
    every instrument's scenario P&L bound to ``market``), so that workers read rows instead of
    revaluing. Shipped together with ``market`` in one pickle, the binding survives."""
    prepare_book(model, book, market, skip_refused=True)
    return model


def _shift(problems: tuple[tuple[str, str], ...], start: int) -> InputError:
    """The partition's problems with account indices counted from the book's start."""
    moved = [(_ACCOUNT.sub(lambda m: f"accounts[{int(m[1]) + start}]", p, count=1), r)
             for p, r in problems]
    return InputError(moved[0][0], moved[0][1], more=moved[1:])


def assess_book_distributed(client: Client, model: MarginModel, book: Book,
                            market: MarketSnapshot, *, policy: HealthPolicy | None = None,
                            liquidation_prices: bool = True,
                            band_solver: BandSolver | None = None,
                            partitions: int | None = None,
                            timings: MutableMapping[str, float] | None = None
                            ) -> list[AccountReport]:
    """:func:`assess_book` on the workers of ``client``, same results, same order.

    Parameters
    ----------
    client : a connected ``distributed.Client`` (see :func:`.scheduler.connect`).
    model, book, market, policy, liquidation_prices, band_solver : as for :func:`assess_book`
        (each partition's bands solved on its worker).
    partitions : number of contiguous account partitions, balanced by position count
        (default :data:`PARTITIONS_PER_WORKER` × worker threads).
    timings : if given, filled with seconds per phase: ``prepare`` (instrument P&L on the
        client), ``broadcast`` (context to every worker), ``scatter`` (partitions),
        ``compute`` (submit to last result ready), ``gather`` (results back), ``worker_sum`` and
        ``worker_cpu`` (wall and CPU seconds of the assessments, summed over partitions,
        measured on the workers), and ``partitions``.

    Raises
    ------
    InputError
        The first bad account in book order, its path counted in the whole book.
    """
    from distributed import wait

    clock: dict[str, float] = {}
    t0 = time.perf_counter()
    shipped = broadcast_model(model, book, market)
    clock["prepare"] = time.perf_counter() - t0
    if not book.accounts:
        return []
    slots = max(1, sum(client.nthreads().values()))  # worker threads across the cluster
    bounds = balanced_bounds([len(a.positions) for a in book.accounts],
                             partitions or PARTITIONS_PER_WORKER * slots)
    t0 = time.perf_counter()
    ctx = client.scatter(Context(shipped, market, policy, liquidation_prices, band_solver),
                         broadcast=True, hash=False)
    clock["broadcast"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    parts = client.scatter([book.accounts[a:b] for a, b in bounds], hash=False)
    clock["scatter"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    futures = client.map(assess_partition, [ctx] * len(parts), parts, pure=False)
    wait(futures)
    clock["compute"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    results: list[PartitionResult] = client.gather(futures)
    clock["gather"] = time.perf_counter() - t0
    clock["worker_sum"] = sum(r.seconds for r in results)
    clock["worker_cpu"] = sum(r.cpu_seconds for r in results)
    clock["partitions"] = float(len(bounds))
    if timings is not None:
        timings.update(clock)
    reports: list[AccountReport] = []
    for (start, _), res in zip(bounds, results, strict=True):
        if res.problems:
            raise _shift(res.problems, start)
        reports.extend(res.reports)
    return reports


def assess_book_on(scheduler: str | None, model: MarginModel, book: Book,
                   market: MarketSnapshot, **kw: object) -> list[AccountReport]:
    """:func:`assess_book` in this process (``scheduler`` None) or on ``local[:N]`` /
    ``tcp://HOST:PORT`` (see :func:`.scheduler.parse_scheduler`); keywords pass through."""
    if scheduler is None:
        return assess_book(model, book, market, **kw)  # type: ignore[arg-type]
    spec = parse_scheduler(scheduler)
    with connect(spec) as client:
        return assess_book_distributed(client, model, book, market, **kw)  # type: ignore[arg-type]
