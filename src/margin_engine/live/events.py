"""What the live book hands back: account states, status-change events, what-if answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from margin_engine.models.core.results import AuditStamp
from margin_engine.policy.health import Status


@dataclass(frozen=True)
class AccountState:
    """An account's headline numbers (as ``compute`` prints them), in ``currency``."""

    id: str
    currency: str
    initial_margin: float
    maintenance_margin: float
    equity: float
    available_balance: float
    margin_ratio: float | None
    status: Status

    def as_dict(self) -> dict[str, Any]:
        # spelled out rather than dataclasses.asdict (a deep copy): on every what-if answer
        return {"id": self.id, "currency": self.currency,
                "initial_margin": self.initial_margin,
                "maintenance_margin": self.maintenance_margin, "equity": self.equity,
                "available_balance": self.available_balance, "margin_ratio": self.margin_ratio,
                "status": self.status.value}


@dataclass(frozen=True)
class Event:
    """A status change of one account.

    ``type`` is ``margin_call`` (equity fell below IM, or rose from liquidation to between MM
    and IM), ``liquidation`` (equity at or below MM) or ``recovery`` (back to healthy).
    """

    seq: int
    type: str
    account: str
    status: Status
    previous_status: Status
    initial_margin: float
    maintenance_margin: float
    equity: float
    margin_ratio: float | None
    currency: str
    cause: str
    audit: AuditStamp

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"], d["previous_status"] = self.status.value, self.previous_status.value
        return d


@dataclass(frozen=True)
class WhatIf:
    """The answer to "what if these orders filled": nothing in the book changes.

    ``accept`` is Deribit's and OKX's pre-trade rule: the orders are accepted when the account
    still covers its initial margin afterwards (equity ≥ IM in every unit, i.e. available
    balance ≥ 0), or when they do not raise the initial margin (risk-reducing orders are always
    allowed).
    """

    account: str
    before: AccountState
    after: AccountState
    initial_margin_change: float
    accept: bool

    @property
    def reason(self) -> str:
        """Why the orders are accepted or refused, in words (formatted when asked, not on
        every answer)."""
        a, change = self.after, self.initial_margin_change
        if a.available_balance >= 0.0:
            return (f"equity {a.equity:.6g} covers initial margin {a.initial_margin:.6g} "
                    f"{a.currency}")
        if self.accept:
            return (f"reduces initial margin by {-change:.6g} {a.currency} (risk-reducing "
                    f"orders are accepted)")
        return (f"initial margin {a.initial_margin:.6g} would exceed what equity covers "
                f"(available balance {a.available_balance:.6g} {a.currency})")

    def as_dict(self) -> dict[str, Any]:
        return {"account": self.account, "before": self.before.as_dict(),
                "after": self.after.as_dict(),
                "initial_margin_change": self.initial_margin_change,
                "accept": self.accept, "reason": self.reason}
