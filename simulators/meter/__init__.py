"""DLMS/COSEM prepayment meter simulator (own sans-io codec, asyncio servers).

Public API: :class:`MeterConfig`, :class:`MeterSimulator`, :class:`MeterState`.
"""

from .model import MeterConfig, MeterState
from .server import MeterSimulator

__all__ = ["MeterConfig", "MeterSimulator", "MeterState"]
