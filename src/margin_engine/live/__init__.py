"""The live engine (DESIGN §8): one in-process book re-margined incrementally."""

from margin_engine.live.book import LiveBook
from margin_engine.live.events import AccountState, Event, WhatIf

__all__ = ["AccountState", "Event", "LiveBook", "WhatIf"]
