"""Simulated data concentrators (DCUs) and data collectors: the concentrator
interface of ``trytond.modules.prepaid_headend.concentrator`` served over
mutual TLS, with the project's simulated meters behind a simulated G3-PLC
network (simulators/README.md)."""

from .config import DEFAULT_PLAN, DcConfig, Faults
from .g3 import G3Config
from .headend import MemoryHeadEnd
from .pki import TestPki
from .simulator import DcuSimulator

__all__ = [
    "DEFAULT_PLAN",
    "DcConfig",
    "DcuSimulator",
    "Faults",
    "G3Config",
    "MemoryHeadEnd",
    "TestPki",
]
