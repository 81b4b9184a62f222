"""placeholder"""
from margin_engine.models.core.base import MarginModel

RiskEngine = None
def supports(model: MarginModel) -> bool:
    return False
