"""The vending RPC adapter: ``model.prepaid.vend.rpc_vend``, plain strings in,
a plain dict out, for vending clients and the bench.

It only turns the request into the arguments of ``Vend.vend`` (the pipeline,
vend_pipeline.py) and its vend into a reply; every check of the sale is the
pipeline's.
"""

from decimal import Decimal

from trytond.i18n import gettext
from trytond.pool import Pool, PoolMeta
from trytond.rpc import RPC
from trytond.transaction import without_check_access

from . import fastpath, vend_pipeline
from .amounts import parse_amount
from .company import current_company
from .exceptions import VendError
from .vend import COUNTED_METHODS


class Vend(metaclass=PoolMeta):
    __name__ = 'prepaid.vend'

    @classmethod
    def __setup__(cls):
        super().__setup__()
        cls.__rpc__.update({"rpc_vend": RPC(readonly=False, instantiate=None)})

    @classmethod
    def rpc_vend(
        cls,
        meter_serial: str,
        tender: str | None,
        payment_method: str,
        sales_point_code: str | None,
        idempotency_key: str,
        requested_kwh: str | None = None,
        channel: str | None = None,
    ) -> dict:
        """Back-office RPC entry point (model.prepaid.vend.rpc_vend): plain
        strings in, a plain dict out, for vending clients and the bench.

        The channel (and so the fee and the shift check) is the sales point's,
        or "api" without a sales point; a client may state it (older clients
        do) but not choose it.  Only money-bringing methods are accepted.
        The tender and kWh are decimal strings in plain notation ("150.50"),
        read by ``amounts.parse_amount`` like every other amount.
        """
        pool = Pool()
        Meter = pool.get("prepaid.meter")
        SalesPoint = pool.get("prepaid.sales_point")
        for name, value in (
            ("meter_serial", meter_serial),
            ("payment_method", payment_method),
            ("idempotency_key", idempotency_key),
        ):
            if not isinstance(value, str) or not value:
                raise VendError(
                    gettext("prepaid_vending.msg_vend_rpc_argument", name=name)
                )
        if payment_method not in dict(COUNTED_METHODS):
            raise VendError(
                gettext(
                    "prepaid_vending.msg_vend_payment_method", method=payment_method
                )
            )
        tender_value = cls._parse_decimal(tender, "tender")
        kwh_value = cls._parse_decimal(requested_kwh, "kWh")
        # Numbers are a utility's own: found within the user's company only
        # (another utility's meter is as unknown as a mistyped one).
        company = current_company()
        with without_check_access():
            meter = Meter.__table__()
            meter_id = fastpath.scalar(
                meter.select(
                    meter.id,
                    where=(meter.company == company.id)
                    & (meter.serial == meter_serial)
                    & (meter.active == True),  # noqa: E712
                    limit=1,
                )
            )
            sales_points = (
                SalesPoint.search(
                    [("company", "=", company.id), ("code", "=", sales_point_code)],
                    limit=1,
                )
                if sales_point_code
                else []
            )
        if meter_id is None:
            raise VendError(
                gettext("prepaid_vending.msg_vend_unknown_meter", meter=meter_serial)
            )
        if sales_point_code and not sales_points:
            raise VendError(
                gettext(
                    "prepaid_vending.msg_vend_unknown_sales_point",
                    code=sales_point_code,
                )
            )
        sales_point = sales_points[0] if sales_points else None
        derived = (sales_point.channel if sales_point else None) or "api"
        if channel not in (None, "", derived):
            raise VendError(
                gettext(
                    "prepaid_vending.msg_vend_rpc_channel",
                    channel=channel,
                    derived=derived,
                )
            )
        if not vend_pipeline.needs_shift(derived, payment_method):
            # No shift will count this sale: only an API terminal sells so.
            # Bad input is told first: it says nothing about anyone's vends.
            vend_pipeline.check_api_terminal(tender_value, kwh_value, sales_point)
        vend = cls.vend(
            Meter(meter_id),
            tender_value,
            payment_method,
            sales_point,
            idempotency_key,
            requested_kwh=kwh_value,
            channel=derived,
        )
        # The requester's own vend (checked by check_retry): answered whatever
        # its read access (an API terminal reads no vend from the client).
        with without_check_access():
            return {
                "number": vend.number,
                "tender": str(vend.tender),
                "units_kwh": str(vend.units_kwh),
                "tokens": [t.token for t in vend.tokens],
            }

    @classmethod
    def _parse_decimal(cls, text, what: str) -> Decimal | None:
        "A decimal string from a client, or a VendError saying what is wrong"
        return parse_amount(text, what, error=VendError)
