"""Types of the XMLVend meter namespace used here: confirm meter."""

from __future__ import annotations

from .base import BaseReq, BaseResp, MeterDetail, VendIDMethod
from .binding import elem, xml_type
from .namespaces import METER


@xml_type(METER)
class ConfirmMeterReq(BaseReq):
    "The meter's STS data as the server knows it"

    id_method: VendIDMethod = elem("idMethod")


@xml_type(METER)
class ConfirmMeterResult:
    meter_detail: MeterDetail = elem("meterDetail")


@xml_type(METER)
class ConfirmMeterResp(BaseResp):
    confirm_meter_result: ConfirmMeterResult = elem("confirmMeterResult")


__all__ = ["ConfirmMeterReq", "ConfirmMeterResp", "ConfirmMeterResult"]
