"""Exogenous price paths: a shock specification or a recorded path, as relative moves.

Shock grammar (``--shock``), one or more terms separated by commas::

    SPEC  := TERM ("," TERM)*
    TERM  := COIN ":" MOVE "%" ["~" STEPS] ["@" START]
    MOVE  := signed decimal, > -100   (e.g. -10, +5.5)
    STEPS := integer >= 1 (default 1): the move spread geometrically over STEPS time steps
    START := integer >= 1 (default 1): the first step that moves

``BTC:-10%`` drops BTC by 10 % at step 1; ``BTC:-14%~6,ETH:-20%~6`` falls over six steps;
``BTC:-8%@2,BTC:+3%@5`` chains two moves (terms on the same coin compound). The path has
``max(START + STEPS − 1)`` steps after the start (step 0 is the market as given).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from margin_engine.errors import InputError

_TERM = re.compile(r"^\s*([A-Za-z0-9_]+)\s*:\s*([+-]?\d+(?:\.\d+)?)\s*%\s*"
                   r"(?:~\s*(\d+))?\s*(?:@\s*(\d+))?\s*$")


@dataclass(frozen=True)
class PricePath:
    """Relative price of each coin at each step, step 0 = 1 (the market as given).

    Attributes
    ----------
    coins : tuple of str
    relative : ndarray, shape (steps + 1, coins)
        Price at step t divided by the price at step 0 (dimensionless, > 0).
    step_seconds : float
        Time between steps (s); resilience decays the transient impact over it.
    label : str
        Where the path came from (the spec, or the file and window).
    """

    coins: tuple[str, ...]
    relative: np.ndarray
    step_seconds: float
    label: str

    @property
    def steps(self) -> int:
        """Number of steps after step 0."""
        return int(self.relative.shape[0]) - 1

    def prices(self, start: Mapping[str, float]) -> np.ndarray:
        """Absolute prices (USD), shape (steps + 1, coins), from the step-0 prices."""
        return self.relative * np.array([float(start[c]) for c in self.coins])


def parse_shock(spec: str, *, step_seconds: float = 3600.0, at: str = "--shock") -> PricePath:
    """Parse a shock specification (module docstring) into a :class:`PricePath`.

    Raises
    ------
    InputError
        ``<at>[i]: <reason>`` for the first malformed term.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(at, "empty shock specification (e.g. BTC:-10%)")
    terms = []
    for i, raw in enumerate(spec.split(",")):
        m = _TERM.match(raw)
        if m is None:
            raise InputError(f"{at}[{i}]", f"expected COIN:MOVE%[~STEPS][@START], got {raw!r}")
        coin, move = m.group(1).upper(), float(m.group(2))
        steps, start = int(m.group(3) or 1), int(m.group(4) or 1)
        if not move > -100.0 or not math.isfinite(move) or move > 1000.0:
            raise InputError(f"{at}[{i}]", f"move must be in (-100%, +1000%], got {move:g}%")
        if steps < 1 or steps > 10_000 or start < 1 or start > 10_000:
            raise InputError(f"{at}[{i}]", "STEPS and START must be integers in [1, 10000]")
        terms.append((coin, move, steps, start))
    coins = tuple(dict.fromkeys(t[0] for t in terms))
    n = max(t[2] + t[3] - 1 for t in terms)
    logp = np.zeros((n + 1, len(coins)))
    for coin, move, steps, start in terms:
        j = coins.index(coin)
        per = math.log1p(move / 100.0) / steps
        k = np.arange(n + 1)
        logp[:, j] += per * np.clip(k - start + 1, 0, steps)
    return PricePath(coins, np.exp(logp), float(step_seconds), f"shock {spec.strip()}")


def path_from_prices(coins: Sequence[str], prices: np.ndarray, *, step_seconds: float,
                     label: str) -> PricePath:
    """A recorded path (absolute prices, shape (steps + 1, coins)) as relative moves.

    Raises
    ------
    InputError
        When the path is shorter than two points or not finite and positive.
    """
    p = np.asarray(prices, dtype=float)
    if p.ndim != 2 or p.shape[0] < 2 or p.shape[1] != len(coins):
        raise InputError("--path", "needs at least two prices per coin")
    if not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise InputError("--path", "prices must be finite and > 0")
    return PricePath(tuple(coins), p / p[0], float(step_seconds), label)
