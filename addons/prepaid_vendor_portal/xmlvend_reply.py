"""The parts of XMLVend answers made from Tryton records: a meter's STS data,
its customer, the utility, the vendor, and the receipt of a vend or a quote.

Kept apart from the backend (xmlvend_backend.py) so that what a client reads
is decided in one place; texts are cut to the schema's lengths, since a
name longer than the standard allows would make the whole answer invalid.
"""

from __future__ import annotations

from decimal import Decimal

from . import xmlvend as x
from .settlement.statement import LABELS

ZERO = Decimal(0)
#: STS token carrier "numeric" (a keypad): the only carrier sold here.
TT_NUMERIC = '02'


def _text(value: str | None, size: int, default: str = '-') -> str:
    value = ' '.join((value or '').split())
    return value[:size] if value else default


def currency(amount: Decimal, company) -> x.Currency:
    symbol = company.currency.symbol if company.currency else None
    return x.Currency(value=amount, symbol=(symbol or None) and symbol[:8])


def meter_detail(meter) -> x.MeterDetail:
    """The meter's STS data; a smart meter without STS data still needs the
    element (the standard requires it): neutral values, never a real SGC"""
    return x.MeterDetail(
        meter_type=x.MeterType(at=meter.sts_ea or '07', tt=TT_NUMERIC),
        msno=meter.serial,
        sgc=meter.sts_sgc or '000000',
        krn=meter.sts_krn or 1,
        ti=meter.sts_tariff_index or '00',
    )


def cust_detail(meter, last_vend=None, now=None) -> x.CustVendDetail:
    customer = meter.customer
    point = meter.service_point
    address = ', '.join(
        p for p in (getattr(point, 'street', None), getattr(point, 'city', None)) if p
    )
    days = None
    if last_vend is not None and now is not None:
        days = max((now.date() - last_vend.date.date()).days, 0)
    return x.CustVendDetail(
        name=_text(customer.name if customer else None, 120),
        address=_text(address, 255),
        acc_no=(customer.customer_number or None) if customer else None,
        loc_ref=point.code[:80] if point and point.code else None,
        days_last_purchase=days,
    )


def utility(company) -> x.UtilityDetail:
    party = company.party
    address = party.addresses[0].full_address if party.addresses else ''
    return x.UtilityDetail(name=_text(party.name, 120), address=_text(address, 255))


def vendor_detail(vendor) -> x.VendorDetail:
    party = vendor.party
    address = party.addresses[0].full_address if party.addresses else ''
    return x.VendorDetail(name=_text(vendor.name, 120), address=_text(address, 255))


def _vat_rate(version) -> Decimal:
    tax = version.tax if version else None
    return (tax.rate if tax and tax.rate is not None else ZERO).normalize()


def receipt(
    company,
    meter,
    receipt_no: str,
    tender: Decimal,
    vat: Decimal,
    kwh: Decimal,
    token: str | None,
    tariff,
    version,
    free: bool = False,
) -> x.CreditVendReceipt:
    """One transaction: the energy bought (net of VAT) with its token (the
    month's free basic electricity when free).  The vend's deductions
    (fees, charges, debt) are inside the net amount; they are not itemised
    on the wire yet."""
    smart = token is None
    issue = x.SaleCredTokenIssue(
        desc=(
            ('Free basic electricity' if free else 'Credit token')
            if not smart
            else ('Free basic electricity (remote)' if free else 'Remote credit')
        ),
        meter_detail=meter_detail(meter),
        token=None if smart else x.STS1Token(sts_cipher=token),
        units=x.Units(value=kwh, si_unit='kWh'),
        resource=x.Electricity(),
    )
    tx = x.CreditVendTx(
        amt=currency(tender - vat, company),
        tax=(x.VAT(amt=currency(vat, company), rate=_vat_rate(version)),),
        receipt_no=receipt_no,
        credit_token_issue=issue,
        tariff=x.Tariff(name=_text(tariff.name, 500)),
    )
    return x.CreditVendReceipt(
        receipt_no=receipt_no,
        transactions=x.Transactions(
            tx=(tx,),
            tender_amt=currency(tender, company),
            change=currency(ZERO, company),
        ),
    )


def credit_token(vend, kind: str = 'credit') -> str | None:
    "The vend's credit (or FBE) token (None for remote credit)"
    for token in vend.tokens:
        if token.kind == kind:
            return token.token
    return None


def statement_text(line) -> str:
    "A vendor statement line's description: its kind, reference and text"
    text = f'{LABELS[line.kind]} {line.reference}: {line.description}'
    return _text(text, 500)
