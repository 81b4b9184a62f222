"""The margin-model interface, typed frozen parameter sets, and the audit stamp."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, get_args

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from margin_engine import __version__
from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import NUMBER_ERROR_TYPES, InputError, format_path, json_kind
from margin_engine.models.core.results import AuditStamp, UnitMargin
from margin_engine.models.core.units import MarginUnit, Scope, build_units


def _is_numeric(annotation: Any) -> bool:
    """Whether a field is a plain number (``float``, ``int``, optionally ``| None``)."""
    if annotation in (float, int):
        return True
    args = get_args(annotation)
    return bool(args) and all(a in (float, int, type(None)) for a in args) and any(
        a in (float, int) for a in args)


class ModelParams(BaseModel):
    """Base of every model's parameters: frozen, typed, unknown names rejected.

    Each field's description says its unit and source; fields marked UNCONFIRMED in the research
    notes say so in their description.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _numbers_are_numbers(cls, data: Any) -> Any:
        """A numeric parameter takes a number only: ``true`` and ``"0.1"`` are refused (pydantic
        would read them as 1.0 and 0.1)."""
        if isinstance(data, dict):
            for key, value in data.items():
                f = cls.model_fields.get(key) if isinstance(key, str) else None
                if f is None or not isinstance(value, bool | str):
                    continue
                if _is_numeric(f.annotation):
                    raise ValueError(f"{key}: expected a number, got {json_kind(value)}")
        return data

    def params_hash(self) -> str:
        """SHA-256 (first 16 hex digits) of the canonical JSON of the parameters."""
        canon = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


#: Settlement currencies of USD-margined perpetual venues (dYdX, Hyperliquid).
USD_STABLE = frozenset({"USDC", "USDT", "USD"})


def linear_perpetual_problem(ins: Instrument, model: str,
                             settle: frozenset[str] = USD_STABLE) -> str | None:
    """Why ``ins`` is not a linear perpetual settled in ``settle`` (``None`` when it is)."""
    if ins.kind.value != "perpetual":
        return f"{model} margins only perpetuals (this is a {ins.kind.value})"
    if ins.inverse:
        return f"{model} margins only linear perpetuals (this one is inverse)"
    if ins.settle not in settle:
        return (f"settles in {ins.settle}; {model} margins only perpetuals settled in "
                f"{'/'.join(sorted(settle))}")
    return None


class MarginModel(ABC):
    """A methodology: turns one margin unit of an account into a :class:`UnitMargin`.

    Subclasses set the class attributes and implement :meth:`margin_unit`; they may restrict
    instruments with :meth:`check_instrument` and override :meth:`liquidation_price` with a
    venue's closed form (the generic solver in ``policy.liquidation`` is used otherwise).
    """

    name: ClassVar[str]
    version: ClassVar[str]
    source: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[ModelParams]]
    modes: ClassVar[frozenset[MarginMode]] = frozenset(MarginMode)

    def __init__(self, params: ModelParams | None = None) -> None:
        self.params = params if params is not None else self.Params()
        if not isinstance(self.params, self.Params):
            raise TypeError(f"{self.name} takes {self.Params.__name__}")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> MarginModel:
        """Build from ``--param key=value`` options; errors name the parameter."""
        try:
            return cls(cls.Params.model_validate(options))
        except ValidationError as exc:
            err = exc.errors()[0]
            key = format_path(err["loc"]) if err["loc"] else "params"
            msg = str(err["msg"]).removeprefix("Value error, ")
            head, sep, tail = msg.partition(": ")
            if not err["loc"] and sep and head.split(".")[0] in cls.Params.model_fields:
                key, msg = head, tail  # a cross-field check names its field
            if err["type"] in NUMBER_ERROR_TYPES:
                msg = f"expected a number, got {json_kind(err.get('input'))}"
            if err["type"] == "extra_forbidden":
                known = ", ".join(cls.Params.model_fields) or "none"
                msg = f"unknown parameter of {cls.name} (known: {known})"
            raise InputError(f"--param {key}", msg) from None

    # -- what a subclass provides -------------------------------------------------------------
    @abstractmethod
    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        """The requirement of one unit, in ``unit.currency``."""

    def maintenance_margin(self, unit: MarginUnit, account: Account,
                           market: MarketSnapshot) -> float:
        """The unit's maintenance margin alone (what the liquidation solver evaluates many
        times); equal to ``margin_unit(...).maintenance_margin``. A model may override it with
        a path that skips the per-position breakdown."""
        return self.margin_unit(unit, account, market).maintenance_margin

    def cross_scope(self, account: Account) -> Scope:
        """How cross and portfolio accounts are grouped (default: per settlement currency)."""
        return "currency"

    def check_instrument(self, ins: Instrument) -> str | None:
        """Why this model cannot margin ``ins`` (``None`` when it can)."""
        return None

    def liquidation_price(self, unit: MarginUnit, account: Account, market: MarketSnapshot,
                          position_index: int, equity: float) -> float | None:
        """A venue's closed-form liquidation price (``None``: none exists). Models without one
        do not override this, and the generic solver of ``policy.liquidation`` is used."""
        raise NotImplementedError

    def liquidation_prices(self, unit: MarginUnit, account: Account, market: MarketSnapshot,
                           equity: float) -> dict[int, float | None]:
        """:meth:`liquidation_price` of every position of the unit, by position index. A model
        may override it to share work between the positions; the numbers are the same."""
        return {j: self.liquidation_price(unit, account, market, j, equity)
                for j in unit.position_indices}

    @classmethod
    def has_closed_form_liquidation(cls) -> bool:
        return cls.liquidation_price is not MarginModel.liquidation_price

    def prepare(self, pairs: Sequence[tuple[MarginUnit, Account]],
                market: MarketSnapshot) -> None:
        """Warm whole-book caches before ``margin_unit`` runs over ``pairs`` (the whole-book
        path of ``assess_book``): models that revalue instruments on scenarios revalue each
        instrument once per scenario set here. The default does nothing; results never depend
        on whether it ran."""
        del pairs, market  # nothing to warm by default

    # -- shared machinery ---------------------------------------------------------------------
    def units(self, account: Account, market: MarketSnapshot) -> list[MarginUnit]:
        """Check the account is one this model margins, then group it into units."""
        if account.margin_mode not in self.modes:
            offered = ", ".join(sorted(m.value for m in self.modes))
            raise InputError("margin_mode", f"{account.margin_mode.value!r} is not offered by "
                             f"{self.name} (offered: {offered})")
        for j, pos in enumerate(account.positions):
            why = self.check_instrument(market.instrument(pos.symbol))
            if why:
                raise InputError(f"positions[{j}].symbol", f"{pos.symbol!r}: {why}")
        return build_units(account, market, self.cross_scope(account))

    def _params_hash(self) -> str:
        """``self.params.params_hash()``, computed once per parameter object (the parameters
        are frozen; ``stamp`` runs once per account and hashing them costs ~0.1 ms)."""
        memo = self.__dict__.get("_params_hash_memo")
        if memo is None or memo[0] is not self.params:
            memo = (self.params, self.params.params_hash())
            self.__dict__["_params_hash_memo"] = memo
        return str(memo[1])

    def stamp(self, market: MarketSnapshot) -> AuditStamp:
        """The audit stamp of a result on ``market``; the last one is remembered (every
        account of a book is stamped with the same; the stamp is frozen)."""
        memo = self.__dict__.get("_stamp_memo")
        if memo is None or memo[0] is not self.params or memo[1] is not market:
            memo = (self.params, market, AuditStamp(
                model=self.name, model_version=self.version, params_hash=self._params_hash(),
                market_timestamp=market.timestamp.isoformat().replace("+00:00", "Z"),
                engine_version=__version__))
            self.__dict__["_stamp_memo"] = memo
        return memo[2]
