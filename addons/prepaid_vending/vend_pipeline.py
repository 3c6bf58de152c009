"""The sale, top to bottom: tender in, tokens (or remote credit) out, in one
transaction.

``sell`` (called by ``Vend.vend``: the cashier wizard, the vending APIs and
the tests) is the single way a vend is made.  Its order is fixed, and the
functions below follow it:

1. idempotency: a key already used returns the stored vend (never charges
   twice): ``check_retry``;
2. checks on the input (tender, meter, shift) that need no lock:
   ``check_meter``, ``check_amount``;
3. the locks (``locking``): the meter, so the month position read next is
   always the latest committed one (vends on other meters never wait), then
   the shift;
4. the price: the tariff calculation (``tariff.quote_vend``) on the
   month-to-date kWh: ``prepare``;
5. the write: the receipt number (the sales point's strict sequence, locked
   until commit: ``receipt_series``), the vend and its lines, the month
   position, debt and emergency-credit repayments;
6. the tokens (hook ``Vend.issue_credit_tokens``) and what follows the issue
   (hook ``Vend.after_issue``: the remote command, the account credit);
7. the booking task pushed (``booking.schedule``): the accounting is made
   from the vend after the commit, not here.

Everything is written in the caller's transaction: an error anywhere rolls
everything back, so there is no money without a token and no token without
money.  ``trial`` is steps 2 and 4 alone: a quote with no lock and nothing
written.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, NamedTuple

from trytond.i18n import gettext
from trytond.model.exceptions import AccessError
from trytond.pool import Pool
from trytond.transaction import Transaction, without_check_access

from . import accounting, booking, fastpath, locking, receipt_series
from .amounts import parse_amount
from .company import CompanyMixin, current_company
from .exceptions import VendError
from .tariff import (
    MeterRegister,
    TariffError,
    VendQuote,
    VendRequest,
    quote_vend,
    tender_for_kwh,
)
from .tariff_model import CHANNELS, VersionPricing

ZERO = Decimal(0)
#: Context key set only by EmergencyCredit.issue (RPC strips keys starting with
#: an underscore, so no client can set it).
EMERGENCY_CONTEXT = '_prepaid_emergency_issue'
#: Staff groups that may sell (the pipeline then writes with access checks off).
VEND_GROUPS = ('group_cashier', 'group_manager', 'group_admin', 'group_api_terminal')
#: The group of service logins that sell through rpc_vend with no shift.
API_TERMINAL_GROUP = 'group_api_terminal'
#: The vend, its lines and tokens, the month position: written by this
#: pipeline only (staff have no create access to them), for selling staff.
VEND_WRITE = fastpath.SystemWrite(
    'the vend pipeline', tuple(f'prepaid_vending.{g}' for g in VEND_GROUPS)
)
fastpath.declare(
    'prepaid_vending',
    'prepaid.vend',
    'prepaid.vend.line',
    'prepaid.vend.token',
    'prepaid.meter.month_position',
)
fastpath.declare_update('prepaid.meter.month_position', 'kwh', 'vends', 'fbe_issued')


class Prepared(NamedTuple):
    "What ``prepare`` found for a vend, and its quote"

    tariff: Any
    version: Any
    pricing: VersionPricing
    position: Any
    quote: VendQuote
    debts: list
    emergencies: list
    # The meter's installation on the day, read once: a write to the meter
    # (its lock, its TID) drops the record's cached values.
    customer: Any
    service_point: Any


def sell(
    meter,
    tender: Decimal | None,
    payment_method: str,
    sales_point,
    idempotency_key: str,
    requested_kwh: Decimal | None = None,
    channel: str = 'counter',
):
    """Sell credit on meter; see the module docstring for the order.

    Returns the saved vend.  A key already used with the same request
    returns its vend unchanged.

    Only selling staff (``VEND_GROUPS``) may call it; the records are then
    written with access checks off, as the staff groups have no write
    access on vends (nobody may edit a vend from the client).
    """
    if not idempotency_key:
        raise VendError(gettext('prepaid_vending.msg_vend_no_key'))
    check_vend_user()
    check_company(meter, sales_point)
    # Priced, numbered and booked with the meter's utility's configuration,
    # whatever company a system caller (cron, script) runs in.
    with (
        without_check_access(),
        Transaction().set_context(company=meter.company.id),
    ):
        return _sell(
            meter,
            tender,
            payment_method,
            sales_point,
            idempotency_key,
            requested_kwh,
            channel,
        )


def _sell(
    meter,
    tender,
    payment_method,
    sales_point,
    idempotency_key,
    requested_kwh,
    channel,
):
    pool = Pool()
    Vend = pool.get('prepaid.vend')
    Session = pool.get('prepaid.cashier.session')

    # 1. Idempotency.
    check_number(tender, 'tender')
    check_number(requested_kwh, 'kWh')
    table = Vend.__table__()
    previous = fastpath.scalar(
        table.select(table.id, where=table.idempotency_key == idempotency_key, limit=1)
    )
    if previous is not None:
        return check_retry(
            Vend(previous),
            meter,
            tender,
            payment_method,
            sales_point,
            requested_kwh,
            channel,
        )

    # 2. Checks that need no lock.
    if payment_method not in dict(Vend.payment_method.selection):
        raise VendError(
            gettext('prepaid_vending.msg_vend_payment_method', method=payment_method)
        )
    if payment_method == 'emergency' and not Transaction().context.get(
        EMERGENCY_CONTEXT
    ):
        # Free energy: only EmergencyCredit.issue, which records the credit
        # to be repaid, may sell with this method.
        raise VendError(gettext('prepaid_vending.msg_vend_emergency_direct'))
    if channel not in dict(CHANNELS):
        raise VendError(gettext('prepaid_vending.msg_vend_channel', channel=channel))
    check_meter(meter)
    check_amount(tender, requested_kwh, sales_point)
    session = None
    if needs_shift(channel, payment_method):
        # Cash is always counted at the end of a shift.
        session = Session.current(sales_point)

    # 3. The locks: from here on the meter is ours until commit.
    locking.lock_meter(meter)
    if session is not None:
        # A shift closing meanwhile must not receive this vend.
        locking.share_lock_shift(session)

    # 4. The price.
    date = dt.datetime.now()
    # Money the books could never hold (a closed period) is not taken.
    accounting.check_bookable(date.date())
    prepared = prepare(meter, tender, requested_kwh, channel, date, payment_method)
    position, quote = prepared.position, prepared.quote
    if requested_kwh is not None:
        check_tender(quote.tender, sales_point)
    config = accounting.VendConfig.get()
    if config.max_kwh_per_vend and quote.units_kwh > config.max_kwh_per_vend:
        raise VendError(
            gettext(
                'prepaid_vending.msg_vend_kwh_above_max',
                kwh=quote.units_kwh,
                maximum=config.max_kwh_per_vend,
            )
        )

    # 5. The write: vend, lines, month position, recoveries.
    number, receipt_sequence = new_number(config, sales_point, date.date())
    vend = Vend(
        company=meter.company,
        number=number,
        receipt_sequence=receipt_sequence,
        date=date,
        idempotency_key=idempotency_key,
        meter=meter,
        customer=prepared.customer,
        service_point=prepared.service_point,
        sales_point=sales_point,
        session=session,
        cashier=Transaction().user,
        channel=channel,
        payment_method=payment_method,
        tender=quote.tender,
        requested_kwh=requested_kwh,
        tariff=prepared.tariff,
        tariff_version=prepared.version,
        units_kwh=quote.units_kwh,
        fbe_kwh=quote.fbe_kwh,
        credit_amount=ZERO,
        month_kwh_before=position.kwh,
        month_kwh_after=quote.month_to_date_kwh,
        debt_remaining=quote.debt_remaining,
        state='issued',
    )
    lines = lines_from_quote(vend, quote, prepared.pricing)
    vend.vat_amount = sum((line.vat for line in lines), ZERO)
    if meter.payment_mode == 'remote_prepaid':
        vend.credit_amount = sum(
            (line.amount for line in lines if line.kind == 'deposit'), ZERO
        )
    store_vend(vend, lines)
    store_position(position, quote)
    apply_recoveries(vend, quote, prepared.debts, prepared.emergencies)

    # 6. The tokens, and what follows the issue.
    tokens = vend.issue_credit_tokens(quote.units_kwh, quote.fbe_kwh)
    for sequence, token in enumerate(tokens, 1):
        token.vend = vend
        token.sequence = getattr(token, 'sequence', None) or sequence
    store_tokens(vend, tokens)
    vend.after_issue()

    # 7. The booking, after the commit.
    if vend.tender:
        booking.schedule(vend)
    return vend


def trial(meter, tender=None, requested_kwh=None, channel='counter') -> VendQuote:
    "A quote without token, money or lock (XMLVend trialCreditVend)"
    check_meter(meter)
    check_number(requested_kwh, 'kWh')
    if requested_kwh is None:
        check_tender(tender, None, fbe_only=True)
    return prepare(meter, tender, requested_kwh, channel, dt.datetime.now()).quote


# ---------------------------------------------------------------------- checks
def check_vend_user() -> None:
    "Only selling staff vend: the pipeline writes with access checks off"
    # root (cron, scripts, imports) always may: see SystemWrite.
    if not VEND_WRITE.allows_user():
        raise AccessError(gettext('prepaid_vending.msg_vend_user_group'))


def check_company(meter, sales_point) -> None:
    """A vend belongs to its meter's utility: the sales point and the selling
    user must be of that company (the utility's tariffs, keys and books
    price, encrypt and book it)."""
    if sales_point is not None:
        CompanyMixin.same_company(
            sales_point, meter, 'prepaid_vending.msg_company_sales_point_meter'
        )
    if Transaction().user and meter.company != current_company():
        raise VendError(
            gettext('prepaid_vending.msg_vend_unknown_meter', meter=meter.serial)
        )


def check_number(value, what: str) -> None:
    """A Decimal within the bounds of every amount (parse_amount): finite
    (NaN and infinity compare wrongly) and small enough for the
    calculator's arithmetic (1e26 would fail its roundings)."""
    if value is None:
        return
    if not isinstance(value, Decimal):
        raise VendError(
            gettext('prepaid_vending.msg_vend_not_number', what=what, value=value)
        )
    parse_amount(value, what, error=VendError)


def check_retry(
    previous,
    meter,
    tender,
    payment_method,
    sales_point,
    requested_kwh,
    channel,
):
    """The stored vend of a key used again, when the request is the same.

    A retry after a time-out must not charge twice; the same key with a
    different request is a client bug that must not go unnoticed.  Only
    the requester who sold it (same user, same sales point) gets the vend
    back: anyone else learns nothing about it, not even its meter."""
    check_same_requester(previous, sales_point)
    if previous.meter != meter:
        raise VendError(
            gettext(
                'prepaid_vending.msg_vend_key_other_meter',
                key=previous.idempotency_key,
                meter=previous.meter.serial,
            )
        )
    if previous.state != 'issued':
        raise VendError(
            gettext(
                'prepaid_vending.msg_vend_key_cancelled',
                key=previous.idempotency_key,
                vend=previous.number,
            )
        )
    differences = [
        name
        for name, value in (
            ('payment_method', payment_method),
            ('channel', channel),
            ('requested_kwh', requested_kwh),
        )
        if getattr(previous, name) != value
    ]
    if requested_kwh is None and previous.tender != tender:
        differences.append('tender')
    if differences:
        raise VendError(
            gettext(
                'prepaid_vending.msg_vend_key_other_request',
                key=previous.idempotency_key,
                vend=previous.number,
                fields=', '.join(differences),
            )
        )
    return previous


def check_same_requester(previous, sales_point) -> None:
    """Refuse the key of another user or sales point without telling
    anything of its vend (its tokens would bypass the reprint limit and
    its log)."""
    owner = previous.cashier.id if previous.cashier else None
    requester = Transaction().user or None
    if (owner or None) != requester or previous.sales_point != sales_point:
        raise VendError(
            gettext(
                'prepaid_vending.msg_vend_key_other_requester',
                key=previous.idempotency_key,
            )
        )


def needs_shift(channel: str, payment_method: str) -> bool:
    "A counter sale or cash is counted at the end of a cashier's shift"
    return channel == 'counter' or payment_method == 'cash'


def check_api_terminal(tender, requested_kwh, sales_point) -> None:
    """Only an API terminal login sells with no shift (and only as
    itself: the vend's cashier is the login that asked).

    Anyone else with a bad amount is told about the amount first, as a
    terminal would be (the checks of _sell).  For a terminal the amount
    is checked by _sell, after its retry lookup: a retry of a vend sold
    before the limits changed still gets its vend back."""
    pool = Pool()
    User = pool.get('res.user')
    ModelData = pool.get('ir.model.data')
    if not Transaction().user:  # root: cron, scripts, imports
        return
    terminal = ModelData.get_id('prepaid_vending', API_TERMINAL_GROUP)
    if terminal not in User.get_groups():
        check_amount(tender, requested_kwh, sales_point)
        raise VendError(gettext('prepaid_vending.msg_vend_api_terminal'))


def check_amount(tender, requested_kwh, sales_point) -> None:
    "The tender, or the kWh asked for, of a new sale"
    if requested_kwh is not None:
        check_number(requested_kwh, 'kWh')
        if requested_kwh <= 0:
            raise VendError(
                gettext('prepaid_vending.msg_vend_kwh_positive', kwh=requested_kwh)
            )
    else:
        check_tender(tender, sales_point, fbe_only=True)


def check_meter(meter) -> None:
    "A meter that may buy and can receive what the sale would send"
    if meter.state != 'installed':
        raise VendError(
            gettext(
                'prepaid_vending.msg_vend_meter_not_installed',
                meter=meter.serial,
                state=meter.state,
            )
        )
    if meter.vend_blocked:
        raise VendError(
            gettext(
                'prepaid_vending.msg_vend_meter_blocked',
                meter=meter.serial,
                reason=meter.vend_blocked_reason or '',
            )
        )
    if meter.payment_mode == 'postpaid':
        raise VendError(
            gettext('prepaid_vending.msg_vend_meter_postpaid', meter=meter.serial)
        )
    # What the sale would send must reach the meter: refused here, before
    # any money is taken (hook of delivery.py, extended by STS/head-end).
    problems = meter.vend_delivery_problems()
    if problems:
        raise VendError(
            gettext(
                'prepaid_vending.msg_vend_cannot_receive',
                meter=meter.serial,
                problems=' '.join(problems),
            )
        )


def check_tender(tender, sales_point, fbe_only: bool = False) -> None:
    "The tender within the configured and the sales point's limits"
    config = accounting.VendConfig.get()
    if tender is None or not isinstance(tender, Decimal):
        raise VendError(gettext('prepaid_vending.msg_vend_tender_type'))
    check_number(tender, 'tender')
    if tender < 0 or (tender == 0 and not fbe_only):
        raise VendError(
            gettext('prepaid_vending.msg_vend_tender_positive', tender=tender)
        )
    if tender == 0:
        return
    if tender != tender.quantize(Decimal('0.01')):
        raise VendError(
            gettext('prepaid_vending.msg_vend_tender_digits', tender=tender)
        )
    minimum = config.min_vend_amount or ZERO
    maximum = config.max_vend_amount
    if sales_point and sales_point.max_vend_amount:
        maximum = min(filter(None, [maximum, sales_point.max_vend_amount]))
    if tender < minimum:
        raise VendError(
            gettext(
                'prepaid_vending.msg_vend_tender_below_min',
                tender=tender,
                minimum=minimum,
            )
        )
    if maximum and tender > maximum:
        raise VendError(
            gettext(
                'prepaid_vending.msg_vend_tender_above_max',
                tender=tender,
                maximum=maximum,
            )
        )


# ----------------------------------------------------------------------- price
def prepare(
    meter, tender, requested_kwh, channel, date: dt.datetime, payment_method='cash'
) -> Prepared:
    "Everything the calculator needs for meter at date, and its quote"
    pool = Pool()
    Tariff = pool.get('prepaid.tariff')
    Position = pool.get('prepaid.meter.month_position')
    Debt_ = pool.get('prepaid.debt')
    Emergency = pool.get('prepaid.emergency_credit')
    tariff = Tariff.for_meter(meter, date.date())
    version = tariff.version_at(date.date())
    pricing = version.pricing()
    calculator = pricing.calculator
    month = date.date().replace(day=1)
    position, first_of_year = Position.get_with_year(meter, month)
    customer, service_point = meter.customer, meter.service_point
    debts = Debt_.open_debts(customer, meter.company) if customer else []
    # Emergency credit and free issues are not paid by the customer: they
    # must not repay anything.
    recovers = payment_method != 'emergency'
    emergencies = Emergency.open_credits(meter) if recovers else []
    fbe_due = bool(calculator.fbe_kwh_per_month) and not position.fbe_issued
    remote = meter.payment_mode == 'remote_prepaid'
    first_of_month = position.vends == 0
    if remote and (first_of_month or first_of_year):
        # A consumption bill of the period may have taken the period
        # charges first: they are taken once per period per account.
        Account = pool.get('prepaid.remote.account')
        billed_month, billed_year = Account.charges_billed(meter, month)
        first_of_month = first_of_month and not billed_month
        first_of_year = first_of_year and not billed_year
    request = VendRequest(
        tender=tender or ZERO,
        month_to_date_kwh=position.kwh,
        first_vend_of_month=first_of_month,
        first_vend_of_year=first_of_year,
        debt=Debt_.to_calculator(debts) if recovers else None,
        emergency_credit_owed=sum((e.outstanding for e in emergencies), ZERO),
        channel=channel,
        fbe_due=fbe_due and not remote,
        meter_register=(MeterRegister.CURRENCY if remote else MeterRegister.KWH),
    )
    try:
        if requested_kwh is not None:
            quote = tender_for_kwh(calculator, requested_kwh, request)
        else:
            quote = quote_vend(calculator, request)
    except TariffError as exc:
        raise VendError(
            gettext(
                'prepaid_vending.msg_vend_tariff_error',
                meter=meter.serial,
                error=str(exc),
            )
        ) from exc
    except ArithmeticError as exc:
        # The inputs are bounded (parse_amount); a tariff with extreme
        # prices may still overflow the decimal context.
        raise VendError(
            gettext(
                'prepaid_vending.msg_vend_tariff_error',
                meter=meter.serial,
                error=gettext('prepaid_vending.msg_vend_too_large'),
            )
        ) from exc
    return Prepared(
        tariff,
        version,
        pricing,
        position,
        quote,
        debts,
        emergencies,
        customer,
        service_point,
    )


# ----------------------------------------------------------------------- write
def new_number(
    config, sales_point=None, date: dt.date | None = None
) -> tuple[str, int | None]:
    """The receipt number and its position in the sales point's series.

    At a sales point: the next number of its strict sequence, gapless (see
    ``receipt_series``: a vend rolled back takes its number with it; vends at
    one sales point take their numbers one after the other).  Vends without
    a sales point (API) keep the configured sequence (fast, but a
    rolled-back vend leaves a gap); its date substitutions take the vend's
    date."""
    if sales_point is None:
        sequence = config.vend_sequence
        if not sequence:
            raise VendError(gettext('prepaid_vending.msg_vend_no_sequence'))
        with Transaction().set_context(date=date):
            return sequence.get(), None
    return receipt_series.next_receipt(sales_point, date)


def lines_from_quote(vend, quote: VendQuote, pricing: VersionPricing) -> list:
    "The UNSAVED lines of vend: fee, charges, recoveries, then energy"
    Line = Pool().get('prepaid.vend.line')
    accounts = pricing.charge_accounts
    tariff = pricing.calculator
    lines = []

    def add(kind, description, amount, vat=ZERO, **extra):
        if amount or vat or extra.get('kwh'):
            lines.append(
                Line(
                    sequence=len(lines) + 1,
                    kind=kind,
                    description=description,
                    amount=amount,
                    vat=vat,
                    **extra,
                )
            )

    add(
        'fee',
        quote.channel_fee.name,
        quote.channel_fee.amount,
        quote.channel_fee.vat,
    )
    for charge in quote.charges:
        add(
            'charge',
            charge.name,
            charge.amount,
            charge.vat,
            account=accounts.get(charge.name),
        )
    add('emergency', "Emergency credit repayment", quote.emergency_credit_recovered)
    add('debt', "Debt recovery", quote.debt_recovered)
    if vend.meter.payment_mode == 'remote_prepaid':
        # Money on account: VAT and revenue are recognised when billed.
        add('deposit', "Credit to account", quote.energy_amount + quote.energy_vat)
    elif quote.blocks:
        # The energy VAT is split over the blocks pro rata, the last block
        # taking the rounding rest so the lines add up exactly.
        total_vat, spent = quote.energy_vat, ZERO
        gross = quote.energy_amount + quote.energy_vat
        for i, use in enumerate(quote.blocks):
            if i == len(quote.blocks) - 1:
                vat = total_vat - spent
            else:
                share = (
                    use.amount
                    if tariff.prices_include_vat
                    else use.amount * (1 + tariff.vat_rate)
                )
                vat = (total_vat * share / gross).quantize(Decimal('0.01'))
                spent += vat
            amount = use.amount - vat if tariff.prices_include_vat else use.amount
            add(
                'energy',
                f"Block {use.block}",
                amount,
                vat,
                block=use.block,
                kwh=use.kwh,
                price=use.price,
            )
        # Money paid for the fraction of 0.1 kWh not issued stays in energy.
        rest = quote.energy_amount - sum(
            (line.amount for line in lines if line.kind == 'energy'), ZERO
        )
        if rest and lines and lines[-1].kind == 'energy':
            lines[-1].amount += rest
    elif quote.energy_amount or quote.energy_vat:
        add('energy', "Energy", quote.energy_amount, quote.energy_vat)
    return lines


# The records of a vend are written set-based (fastpath): every value comes
# from records just read and checked above, and the ORM's re-read and
# re-validation of each new record was most of a vend's time.
def store_vend(vend, lines) -> None:
    "INSERT the vend and its lines; vend keeps its values in memory"
    fastpath.save([vend], system=VEND_WRITE)
    for line in lines:
        line.vend = vend
    fastpath.save(lines, system=VEND_WRITE)
    vend.lines = lines


def store_position(position, quote: VendQuote) -> None:
    "The month position after the vend, under the meter lock"
    values = {
        'kwh': quote.month_to_date_kwh,
        'vends': position.vends + (1 if quote.tender else 0),
        'fbe_issued': bool(position.fbe_issued or quote.fbe_kwh),
    }
    if position.id is None:
        for name, value in values.items():
            setattr(position, name, value)
        fastpath.save([position], system=VEND_WRITE)
    else:
        fastpath.update([position], values, system=VEND_WRITE)
        for name, value in values.items():
            setattr(position, name, value)


def apply_recoveries(vend, quote: VendQuote, debts, emergencies) -> None:
    "Debt and emergency credit repaid by this vend"
    pool = Pool()
    Debt_ = pool.get('prepaid.debt')
    Emergency = pool.get('prepaid.emergency_credit')
    if quote.debt_recovered:
        Debt_.recover(debts, quote.debt_recovered, vend)
    if quote.emergency_credit_recovered:
        Emergency.repay(emergencies, quote.emergency_credit_recovered, vend)


def store_tokens(vend, tokens) -> None:
    "INSERT the tokens, with the digit check of VendToken.validate_fields"
    # The fast path runs VendToken.validate_fields (the 20-digit check).
    fastpath.save(tokens, system=VEND_WRITE)
    vend.tokens = tokens
