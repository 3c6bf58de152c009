"""Pure-Python prepaid tariff calculator (no trytond import).

Vend quotes (:func:`quote_vend`, :func:`tender_for_kwh`), monthly billing for
remote-prepaid meters (:func:`bill_month`) and TOU pricing per load-profile
interval (:func:`price_intervals`). See ``vend_pipeline.py`` for the pipeline and
policies.
"""

from .billing import BillLine, MonthlyBill, bill_month, power_factor
from .blocks import BlockUse, cost_of_kwh, split_kwh, walk_amount
from .errors import TariffError
from .model import (
    MAX_BLOCKS,
    Block,
    ChannelFee,
    Charge,
    ChargePeriod,
    PowerFactorPenalty,
    Tariff,
    TariffKind,
)
from .money import KWH_STEP, VatRounding, kwh_down, money
from .serialize import (
    quote_to_dict,
    request_from_dict,
    tariff_from_dict,
    tariff_to_dict,
)
from .tou import (
    DayProfile,
    DaySwitch,
    IntervalPrice,
    Season,
    SpecialDay,
    TouRate,
    TouSchedule,
    WeekProfile,
    price_intervals,
)
from .vend import (
    ChargeLine,
    Debt,
    MeterRegister,
    VendQuote,
    VendRequest,
    quote_vend,
    tender_for_kwh,
)

__all__ = [
    "KWH_STEP", "MAX_BLOCKS", "BillLine", "Block", "BlockUse", "ChannelFee",
    "Charge", "ChargeLine", "ChargePeriod", "DayProfile", "DaySwitch", "Debt",
    "IntervalPrice", "MeterRegister", "MonthlyBill", "PowerFactorPenalty",
    "Season", "SpecialDay", "Tariff", "TariffError", "TariffKind", "TouRate",
    "TouSchedule", "VatRounding", "VendQuote", "VendRequest", "WeekProfile",
    "bill_month", "cost_of_kwh", "kwh_down", "money", "power_factor",
    "price_intervals", "quote_to_dict", "quote_vend", "request_from_dict",
    "split_kwh", "tariff_from_dict", "tariff_to_dict", "tender_for_kwh",
    "walk_amount",
]  # fmt: skip
