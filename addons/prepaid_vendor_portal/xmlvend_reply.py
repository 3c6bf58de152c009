"""The parts of XMLVend answers made from Tryton records: a meter's STS data,
its customer, the utility, the vendor, and the receipt of a vend or a quote.

Kept apart from the backend (xmlvend_backend.py) so that what a client reads
is decided in one place; texts are cut to the schema's lengths, since a
name longer than the standard allows would make the whole answer invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from trytond.pool import Pool

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


@dataclass(frozen=True)
class Item:
    """One thing a tender paid for: the energy, or one deduction (a vend
    line's kind: fee, charge, emergency, debt, deposit)."""

    kind: str
    desc: str
    amount: Decimal  # excluding VAT
    vat: Decimal


@dataclass(frozen=True)
class Tokens:
    """What the customer enters, in order: a key change's two tokens, the
    credit token, the free basic electricity token.  ``remote``: a smart
    meter credited through the head-end, with nothing to enter (no digits
    on the receipt)."""

    credit: str | None
    remote: bool = False
    fbe: str | None = None
    fbe_kwh: Decimal = ZERO
    key_change: tuple[str, str] | None = None
    kct_data: x.KCTData | None = None


def vend_items(vend) -> list[Item]:
    """The vend's lines as receipt items, the energy blocks summed into one
    (none for a free basic electricity issue on its own)"""
    energy = None
    others = []
    for line in vend.lines:
        if line.kind == 'energy':
            amount, vat = (energy.amount, energy.vat) if energy else (ZERO, ZERO)
            energy = Item('energy', 'Energy', amount + line.amount, vat + line.vat)
        else:
            others.append(Item(line.kind, line.description, line.amount, line.vat))
    return ([energy] if energy else []) + others


def quote_items(quote) -> list[Item]:
    "A quote's deductions and energy as receipt items (a trial vend)"
    fee = quote.channel_fee
    items = [Item('energy', 'Energy', quote.energy_amount, quote.energy_vat)]
    if fee.gross:
        items.append(Item('fee', fee.name, fee.amount, fee.vat))
    items += [Item('charge', c.name, c.amount, c.vat) for c in quote.charges]
    if quote.emergency_credit_recovered:
        items.append(
            Item(
                'emergency', 'Emergency credit', quote.emergency_credit_recovered, ZERO
            )
        )
    if quote.debt_recovered:
        items.append(Item('debt', 'Debt recovery', quote.debt_recovered, ZERO))
    return items


def vend_tokens(vend) -> Tokens:
    """The vend's tokens; a key change's two tokens with its key data from
    the key change the vend delivered (``delivered_with``)."""
    by_kind: dict[str, list] = {}
    for token in vend.tokens:
        by_kind.setdefault(token.kind, []).append(token)
    fbe = by_kind.get('fbe', [None])[0]
    key_change = kct_data = None
    if by_kind.get('key_change'):
        KeyChange = Pool().get('prepaid.sts.key_change')
        (change,) = KeyChange.search([('delivered_with', '=', str(vend))])
        first, second = (t.token for t in by_kind['key_change'])
        key_change = (first, second)
        kct_data = x.KCTData(
            from_sgc=change.old_sgc,
            from_krn=change.old_krn,
            from_ti=change.old_tariff_index,
            to_sgc=change.new_sgc,
            to_krn=change.new_krn,
            to_ti=change.new_tariff_index,
        )
    return Tokens(
        credit=credit_token(vend),
        remote=vend.meter.kind != 'sts_keypad',
        fbe=fbe.token if fbe else None,
        fbe_kwh=vend.fbe_kwh or ZERO,
        key_change=key_change,
        kct_data=kct_data,
    )


def _vat(amount: Decimal, rate: Decimal, company) -> tuple[x.VAT, ...]:
    return (x.VAT(amt=currency(amount, company), rate=rate),) if amount else ()


def receipt(
    company,
    meter,
    receipt_no: str,
    tender: Decimal,
    items: list[Item],
    kwh: Decimal,
    tokens: Tokens,
    tariff,
    version,
) -> x.CreditVendReceipt:
    """The receipt, itemised as real servers send it: the free basic
    electricity first (amount 0, its own token), the energy bought net of
    VAT with its credit token and the key change riding on it, then one
    transaction per deduction (service charges, debt and emergency credit
    recovered, account credit).  The transactions' amounts and VAT add up
    to the tender."""
    rate = _vat_rate(version)
    tariff_name = x.Tariff(name=_text(tariff.name, 500))
    detail = meter_detail(meter)
    txs: list[x.Tx] = []
    kc_issue = None
    if tokens.key_change:
        first, second = tokens.key_change
        kc_issue = x.KCTokenIssue(
            desc='Key change: enter these two tokens first',
            meter_detail=detail,
            token=x.KCToken(
                set_1st_meter_key=x.STS1Token(sts_cipher=first),
                set_2nd_meter_key=x.STS1Token(sts_cipher=second),
            ),
            kct_data=tokens.kct_data,
        )
    smart = tokens.remote
    if tokens.fbe_kwh:
        # The key change rides on the sale, or on the free issue alone.
        sale = any(item.kind == 'energy' for item in items)
        txs.append(
            x.CreditVendTx(
                amt=currency(ZERO, company),
                receipt_no=receipt_no,
                credit_token_issue=x.FBECredTokenIssue(
                    desc='Free basic electricity' + (' (remote)' if smart else ''),
                    meter_detail=detail,
                    token=None if smart else x.STS1Token(sts_cipher=tokens.fbe),
                    units=x.Units(value=tokens.fbe_kwh, si_unit='kWh'),
                    resource=x.Electricity(),
                ),
                kc_token_issue=None if sale else kc_issue,
                tariff=tariff_name,
            )
        )
    for item in items:
        if item.kind == 'energy':
            txs.append(
                x.CreditVendTx(
                    amt=currency(item.amount, company),
                    tax=(x.VAT(amt=currency(item.vat, company), rate=rate),),
                    receipt_no=receipt_no,
                    credit_token_issue=x.SaleCredTokenIssue(
                        desc='Remote credit' if smart else 'Credit token',
                        meter_detail=detail,
                        token=None if smart else x.STS1Token(sts_cipher=tokens.credit),
                        units=x.Units(value=kwh, si_unit='kWh'),
                        resource=x.Electricity(),
                    ),
                    kc_token_issue=kc_issue,
                    tariff=tariff_name,
                )
            )
            continue
        cls = (
            x.DebtRecoveryTx
            if item.kind in {'debt', 'emergency'}
            else (x.PayAccTx if item.kind == 'deposit' else x.ServiceChrgTx)
        )
        txs.append(
            cls(
                amt=currency(item.amount, company),
                tax=_vat(item.vat, rate, company),
                receipt_no=receipt_no,
                acc_desc=_text(item.desc, 120),
            )
        )
    return x.CreditVendReceipt(
        receipt_no=receipt_no,
        transactions=x.Transactions(
            tx=tuple(txs),
            tender_amt=currency(tender, company),
            change=currency(ZERO, company),
        ),
    )


def credit_token(vend) -> str | None:
    "The vend's credit token (None for remote credit)"
    for token in vend.tokens:
        if token.kind == 'credit':
            return token.token
    return None


def statement_text(line) -> str:
    "A vendor statement line's description: its kind, reference and text"
    text = f'{LABELS[line.kind]} {line.reference}: {line.description}'
    return _text(text, 500)
