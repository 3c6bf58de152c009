"""The XMLVend backend on Tryton: :class:`TrytonXMLVend` implements
``xmlvend.Backend`` in the current transaction (routes.py opens it, as
root: a vending client is no Tryton user; its terminal's API token is its
login).

Every request is authenticated first: the clientID and terminalID name a
terminal (``prepaid.vendor.terminal``) and the API token must be its (the
password of ``authCred`` on a service terminal, the ``X-XMLVend-Token``
HTTP header on a terminal with ``operator_required``, where ``authCred``
names an operator of the vendor and carries the operator's password); the
chain owner - vendor - outlet - terminal (- operator) must be allowed to
act now (``limits.check``: lifecycle, lock-out, address, hours).  A sale
then passes ``limits.check`` on its amount and the vendor's float, its
amount is drawn from the float (refused: nothing is sold), it is made by
the vending core (``Vend.vend``, idempotent on the msgID), recorded as the
vendor's sale with its commission at sale (``prepaid.vendor.sale``, booked
later on the vendor's float account with the vend: vendor_sale.py) and its
answer is stored (``prepaid.vendor.xmlvend.answer``); any fault after the
draw rolls everything back, the draw included (vendor_float.py).  An FBE
issue is such a sale at a zero tender (nothing drawn); an account payment
draws its amount and pays the customer's debts (``vendor_float.pay_debts``);
the vendor statement reads the float account (vendor_statement.py).  Each
answers a retry of its msgID with the stored answer.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from decimal import Decimal

from trytond import backend
from trytond.exceptions import UserError
from trytond.modules.prepaid_vending import accounting, vend_pipeline
from trytond.pool import Pool
from trytond.transaction import Transaction, TransactionError, without_check_access

from . import limits as core
from . import vendor_statement
from . import xmlvend as x
from . import xmlvend_reply as reply
from .vendor_float import pay_debts

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
#: The customer paid the vendor; the utility is paid from the vendor's
#: float, not by a cashier's drawer: no shift counts these sales.
PAYMENT_METHOD = 'bank_transfer'
CHANNEL = 'api'
#: Prefix of the vends' idempotency keys: keeps the XMLVend msgIDs apart
#: from the keys other vending channels choose.
KEY_PREFIX = 'xmlvend:'
TRIAL_TOKEN = '0' * 20


def _device(device: x.DeviceID) -> str:
    "The clientID or terminalID as the terminal record stores it"
    return device.key.partition(':')[2]


def _guard(method):
    """Keep the database errors trytond must see: the core turns every
    exception into a SystemEx fault, so the route re-raises ``error`` (a
    serialisation failure, FloatBusy) to restart the transaction."""

    @functools.wraps(method)
    def wrapper(self, request):
        try:
            return method(self, request)
        except x.XMLVendError:
            raise
        except (TransactionError, backend.DatabaseOperationalError) as exc:
            self.error = exc
            raise x.RunAgain() from exc
        except UserError as exc:
            # The vending core's refusal (tender out of range, tariff...):
            # its message is meant for the user, never a stack trace.
            raise x.RequestAuthorisationEx(
                exc.message, operator_msg=exc.message
            ) from exc

    return wrapper


class TrytonXMLVend:
    """``xmlvend.Backend`` on the database of the current transaction.

    ``address``: the client's IP address (limits by network); ``fingerprint``:
    its TLS client certificate's SHA-256 as the proxy reports it, if any;
    ``token``: the API token of the ``X-XMLVend-Token`` header, if any.

    After a request: ``terminal`` and ``operator`` it authenticated as (for
    the request log), ``failed_operator`` the id of an operator whose
    password was wrong (the route counts it after the fault's rollback)."""

    def __init__(
        self,
        server_id: x.DeviceID,
        address: str,
        fingerprint: str | None = None,
        now: dt.datetime | None = None,
        token: str | None = None,
    ) -> None:
        self.server_id = server_id
        self.address = address
        self.fingerprint = fingerprint
        self.now = now or dt.datetime.now(dt.UTC)
        self.token = token
        self.error: BaseException | None = None
        self.terminal = None
        self.operator = None
        self.failed_operator: int | None = None

    # -- authentication and limits --------------------------------------------
    def _terminal(self, request: x.BaseReq):
        """The terminal the request authenticates as, and its operator
        (``self.operator``) on a terminal that requires one"""
        terminal = self._api_terminal(request)
        self.terminal = terminal
        self.operator = self._operator(terminal, request)
        return terminal

    def _api_terminal(self, request: x.BaseReq):
        Terminal = Pool().get('prepaid.vendor.terminal')
        cred = request.auth_cred
        with without_check_access():
            terminals = Terminal.search(
                [
                    ('client_id', '=', _device(request.client_id)),
                    ('terminal_id', '=', _device(request.terminal_id)),
                ]
            )
        for terminal in terminals:
            if terminal.operator_required:
                # authCred is the operator's: the token comes in the header.
                token = self.token
            else:
                token = self.token or (cred.password if cred else None)
            if terminal.check_token(token, self.fingerprint):
                return terminal
        if any(t.revoked for t in terminals):
            raise x.ClientIDAuthorisationEx(
                'The credentials of this terminal are revoked: ask the utility '
                'for a new API token'
            )
        # One message for an unknown terminal and a wrong token: a guesser
        # learns nothing about which terminals exist.
        raise x.ClientIDAuthorisationEx(
            'Unknown terminal or wrong API token (authCred password)'
        )

    def _operator(self, terminal, request: x.BaseReq):
        """The operator of authCred on a terminal that requires one (None on
        a service terminal: its opName is not checked).  One message for an
        unknown operator and a wrong password; a wrong password counts
        towards the lock-out (``failed_operator``)."""
        if not terminal.operator_required:
            return None
        Operator = Pool().get('prepaid.vendor.operator')
        cred = request.auth_cred
        if cred is None or not cred.password:
            raise x.RequestAuthorisationEx(
                'This terminal requires an operator: send authCred with the '
                'operator\'s opName and password',
                operator_msg='Log in with your operator name and password',
            )
        with without_check_access():
            operators = Operator.search(
                [
                    ('vendor', '=', terminal.outlet.vendor.id),
                    ('login', '=', cred.op_name.strip()),
                ],
                limit=1,
            )
        operator = operators[0] if operators else None
        if operator is not None and operator.locked:
            raise x.RequestAuthorisationEx(
                f'Operator {operator.login} is locked after too many failed '
                'log-ins: a vendor manager must unlock it',
                operator_msg='Operator locked: ask your manager to unlock it',
            )
        if operator is None:
            # As slow as a wrong password: the time taken tells no guesser
            # which logins exist.
            Pool().get('res.user').hash_password(cred.password)
        if operator is None or not operator.verify_password(cred.password):
            if operator is not None:
                self.failed_operator = operator.id
            raise x.RequestAuthorisationEx(
                'Unknown operator or wrong password',
                operator_msg='Unknown operator or wrong password',
            )
        operator.reset_failures()
        return operator

    def _allow(
        self, terminal, kind: core.Kind, amount: Decimal = ZERO, meter=None
    ) -> None:
        vendor = terminal.outlet.vendor
        status = None
        if meter is not None:
            status = core.MeterStatus(
                meter.serial,
                supply_group=meter.sts_sgc,
                blocked=bool(meter.vend_blocked),
                blocked_reason=meter.vend_blocked_reason or '',
            )
        refusal = core.check(
            terminal.limits_chain(self.operator),
            vendor.float_state(),
            core.VendRequest(kind, amount, self.now, self.address),
            vendor.timezone(),
            status,
        )
        if refusal is not None:
            raise refusal.exception()

    def _enter(self, request: x.BaseReq):
        "The authenticated terminal allowed to act now (no money involved)"
        terminal = self._terminal(request)
        self._allow(terminal, core.Kind.FBE)
        return terminal

    # -- meters --------------------------------------------------------------
    def _meter(self, terminal, id_method: x.IDMethod):
        Meter = Pool().get('prepaid.meter')
        msno = getattr(id_method, 'msno', None)
        if msno is None:
            raise x.ConfirmCustomerEx(
                'Identify the customer by meter number: other identifiers are '
                'not supported yet'
            )
        with without_check_access():
            meters = Meter.search(
                [('company', '=', terminal.company.id), ('serial', '=', msno)],
                limit=1,
            )
        if not meters:
            raise x.UnknownMeterEx(
                f'Meter {msno} is not registered', cust_msg='Meter not found'
            )
        (meter,) = meters
        if meter.vend_blocked or meter.state != 'installed':
            reason = meter.vend_blocked_reason or meter.state
            raise x.BlockedMeterEx(
                f'Meter {msno} may not buy ({reason})', cust_msg='Meter blocked'
            )
        if meter.payment_mode == 'postpaid':
            raise x.BlockedMeterEx(f'Meter {msno} is postpaid: no credit is sold')
        return meter

    def _header(self, request: x.BaseReq) -> dict:
        return x.reply_header(request, self.server_id, self.now)

    # -- stored answers ------------------------------------------------------
    def _stored(self, terminal, key: str):
        Answer = Pool().get('prepaid.vendor.xmlvend.answer')
        with without_check_access():
            # Within the vendor: a client ID shared by two vendors' tills
            # must not read the other's answers.
            answers = Answer.search(
                [
                    ('company', '=', terminal.company.id),
                    ('key', '=', key),
                    ('terminal.outlet.vendor', '=', terminal.outlet.vendor.id),
                ],
                limit=1,
            )
        return answers[0] if answers else None

    def _retry(self, terminal, request: x.BaseReq):
        """The stored answer of a retry, None for a new msgID; a msgID used
        for another request is refused"""
        answer = self._stored(terminal, request.idempotency_key)
        if answer is None:
            return None
        if answer.fingerprint != x.request_fingerprint(request):
            raise x.DuplicateMsgID(
                f'msgID {request.msg_id.key} was used for another request'
            )
        return x.decode_payload(bytes(answer.payload))

    def _store(
        self,
        terminal,
        request: x.BaseReq,
        response,
        operation: str | None = None,
        **links,
    ) -> None:
        """Keep the answer of request: a retry of its msgID gets it again,
        another request under that msgID is refused (``_retry``).  ``links``:
        the vend, meter (reprint lists the answers with one) and batch it is
        about; ``operation``: the request's type name unless given."""
        Answer = Pool().get('prepaid.vendor.xmlvend.answer')
        with without_check_access():
            Answer.create(
                [
                    {
                        'company': terminal.company.id,
                        'key': request.idempotency_key,
                        'fingerprint': x.request_fingerprint(request),
                        'operation': operation or type(request).__name__,
                        'terminal': terminal.id,
                        'operator': self.operator.id if self.operator else None,
                        'payload': x.encode_payload(response),
                        **links,
                    }
                ]
            )

    # -- operations ----------------------------------------------------------
    @_guard
    def confirm_meter(self, request: x.ConfirmMeterReq) -> x.ConfirmMeterResp:
        terminal = self._enter(request)
        meter = self._meter(terminal, request.id_method)
        return x.ConfirmMeterResp(
            **self._header(request),
            confirm_meter_result=x.ConfirmMeterResult(
                meter_detail=reply.meter_detail(meter)
            ),
        )

    @_guard
    def confirm_customer(self, request: x.ConfirmCustomerReq) -> x.ConfirmCustomerResp:
        terminal = self._enter(request)
        meter = self._meter(terminal, request.id_method)
        company = terminal.company
        low, high = core.vend_range(terminal.limits_chain(self.operator))
        return x.ConfirmCustomerResp(
            **self._header(request),
            confirm_cust_result=(
                x.ConfirmCustResult(
                    cust_vend_detail=reply.cust_detail(meter),
                    cust_vend_config=x.CustVendConfig(
                        can_vend=True,
                        max_vend_amt=reply.currency(high, company) if high else None,
                        min_vend_amt=reply.currency(low, company) if low else None,
                    ),
                    meter_detail=reply.meter_detail(meter),
                ),
            ),
        )

    def _purchase(self, meter, value: x.PurchaseValue):
        "(tender, requested kWh): money asked for, or kWh priced by a quote"
        Vend = Pool().get('prepaid.vend')
        if isinstance(value, x.PurchaseValueCurrency):
            return value.amt.value, None
        if value.units.si_unit != 'kWh':
            raise x.XMLVendSchemaEx(f'Units in {value.units.si_unit} are not sold')
        kwh = value.units.value
        quote = Vend.trial(meter, requested_kwh=kwh, channel=CHANNEL)
        return quote.tender, kwh

    def _check_key_change(self, meter) -> None:
        """A key change the sale would deliver must fit the wire: one
        pending change of two tokens (KCToken).  Otherwise the sale is
        refused before any money is taken: a credit token under the new key
        alone would not load."""
        if meter.kind != 'sts_keypad' or not meter.sts_key_change_pending:
            return
        KeyChange = Pool().get('prepaid.sts.key_change')
        with without_check_access():
            pending = KeyChange.pending_for(meter)
        if len(pending) != 1 or len(pending[0].tokens) != 2:
            raise x.STSDataEx(
                f'Meter {meter.serial} has a key change pending that XMLVend '
                'cannot carry: sell at the utility\'s office'
            )

    def _sale_response(self, cls, request, terminal, meter, avail, receipt):
        company = terminal.company
        return cls(
            **self._header(request),
            disp_header='CREDIT VEND - TAX INVOICE',
            cust_msg='Credit sent to the meter' if meter.kind != 'sts_keypad' else None,
            client_status=x.ClientStatus(avail_credit=reply.currency(avail, company)),
            utility=reply.utility(company),
            vendor=reply.vendor_detail(terminal.outlet.vendor),
            cust_vend_detail=reply.cust_detail(meter),
            credit_vend_receipt=receipt,
        )

    @_guard
    def trial_credit_vend(self, request: x.TrialCreditVendReq) -> x.TrialCreditVendResp:
        Vend = Pool().get('prepaid.vend')
        terminal = self._terminal(request)
        meter = self._meter(terminal, request.id_method)
        tender, kwh = self._purchase(meter, request.purchase_value)
        self._allow(terminal, core.Kind.TRIAL, tender, meter)
        quote = Vend.trial(meter, tender=tender, requested_kwh=kwh, channel=CHANNEL)
        tariff, version = self._tariff(meter)
        receipt = reply.receipt(
            terminal.company,
            meter,
            '0',
            quote.tender,
            reply.quote_items(quote),
            quote.units_kwh,
            reply.Tokens(
                credit=TRIAL_TOKEN if meter.kind == 'sts_keypad' else None,
                remote=meter.kind != 'sts_keypad',
            ),
            tariff,
            version,
        )
        avail = terminal.outlet.vendor.float_state().available
        return self._sale_response(
            x.TrialCreditVendResp, request, terminal, meter, avail, receipt
        )

    def _tariff(self, meter):
        Tariff = Pool().get('prepaid.tariff')
        tariff = Tariff.for_meter(meter, self.now.date())
        return tariff, tariff.version_at(self.now.date())

    @_guard
    def credit_vend(self, request: x.CreditVendReq) -> x.CreditVendResp:
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Position = pool.get('prepaid.vendor.float')
        terminal = self._terminal(request)
        stored = self._retry(terminal, request)
        if stored is not None:
            # A retry: the same token and receipt, never a second sale.
            return stored
        vendor = terminal.outlet.vendor
        meter = self._meter(terminal, request.id_method)
        self._check_key_change(meter)
        tender, kwh = self._purchase(meter, request.purchase_value)
        self._allow(terminal, core.Kind.VEND, tender, meter)
        # The float first: a refusal costs no token, and the amount left is
        # the one this sale's draw returned (a rollback gives it back).
        available = Position.draw(vendor.id, tender)
        if available is None:
            raise x.VendorCreditEx(
                'Insufficient vendor credit',
                operator_msg=f'Available credit {vendor.float_state().available}',
            )
        with Transaction().set_context(company=terminal.company.id):
            vend = Vend.vend(
                meter,
                None if kwh is not None else tender,
                PAYMENT_METHOD,
                None,
                KEY_PREFIX + request.idempotency_key,
                requested_kwh=kwh,
                channel=CHANNEL,
            )
        with without_check_access():
            receipt = reply.receipt(
                terminal.company,
                meter,
                vend.number,
                vend.tender,
                reply.vend_items(vend),
                vend.units_kwh or ZERO,
                reply.vend_tokens(vend),
                vend.tariff,
                vend.tariff_version,
            )
        if vend.tender != tender:
            # A sale in kWh is priced by the same tariff as its quote: a
            # difference is a defect, and the float must match the sale.
            raise x.SystemEx(
                f'Sale {vend.number} priced {vend.tender}, quoted {tender}'
            )
        # The vendor's sale, with the commission its plan deducts at the
        # sale: the vendor keeps it, so its float gives it back (booked with
        # the vend: vendor_sale.py).
        commission = pool.get('prepaid.vendor.sale').record(terminal, vend, self.now)
        if commission:
            Position.release(vendor.id, commission)
            available += commission
        response = self._sale_response(
            x.CreditVendResp, request, terminal, meter, available, receipt
        )
        # The terminal's open sales batch, or a day batch opened by this sale.
        batch = pool.get('prepaid.vendor.batch').for_sale(terminal, self.now)
        self._store(
            terminal,
            request,
            response,
            operation='CreditVendRequest',
            batch=batch.id,
            vend=vend.id,
            meter=meter.id,
        )
        return response

    @_guard
    def last_response_advice(
        self, request: x.LastRespAdviceReq
    ) -> x.LastRespAdviceResp:
        terminal = self._enter(request)
        key = f'{request.client_id.key}/{request.advice_req_msg_id.key}'
        answer = self._stored(terminal, key)
        if answer is None:
            raise x.LastResponseEx(
                f'No transaction with msgID {request.advice_req_msg_id.key}'
            )
        return x.LastRespAdviceResp(
            **self._header(request),
            advice_req_msg_id=request.advice_req_msg_id,
            last_response=x.decode_payload(bytes(answer.payload)),
        )

    @_guard
    def reprint(self, request: x.ReprintReq) -> x.ReprintResp:
        pool = Pool()
        Answer = pool.get('prepaid.vendor.xmlvend.answer')
        Reprint = pool.get('prepaid.vend.reprint')
        terminal = self._enter(request)
        meter = self._meter(terminal, request.id_method)
        with without_check_access():
            # The vendor's own sales only: no vendor reads another's.
            answers = Answer.search(
                [
                    ('meter', '=', meter.id),
                    ('terminal.outlet.vendor', '=', terminal.outlet.vendor.id),
                ],
                limit=Reprint._allowed(),
                order=[('id', 'DESC')],
            )
        if not answers:
            raise x.ReprintEx(f'No XMLVend sale to reprint for meter {meter.serial}')
        Reprint._write_log(
            [a.vend for a in answers if a.vend],
            'reprint',
            f'XMLVend {terminal.rec_name}',
        )
        return x.ReprintResp(
            **self._header(request),
            reprint=tuple(
                x.decode_payload(bytes(a.payload)) for a in reversed(answers)
            ),
        )

    # -- advice on a sale ----------------------------------------------------
    def _advice(self, request: x.AdviceReq, missing: type[x.XMLVendError], answer):
        """Answer an advice on a stored sale once per msgID: a retry gets the
        stored answer; ``answer(original)`` builds the first one.  The
        advice's answer is stored without its meter, so reprint never
        shows it."""
        terminal = self._enter(request)
        stored = self._retry(terminal, request)
        if stored is not None:
            return stored
        key = f'{request.client_id.key}/{request.advice_req_msg_id.key}'
        original = self._stored(terminal, key)
        if original is None or original.operation != 'CreditVendRequest':
            # A refused sale stored nothing: there is nothing to advise on.
            raise missing(f'No sale with msgID {request.advice_req_msg_id.key}')
        response = answer(original)
        self._store(
            terminal,
            request,
            response,
            vend=original.vend.id if original.vend else None,
        )
        return response

    @_guard
    def confirmation_advice(
        self, request: x.ConfirmationAdviceReq
    ) -> x.ConfirmationAdviceResp:
        # The sale was committed with its answer: confirming changes nothing.
        return self._advice(
            request,
            x.ConfirmationEx,
            lambda original: x.ConfirmationAdviceResp(
                **self._header(request),
                advice_req_msg_id=request.advice_req_msg_id,
                tx_confirmed=True,
            ),
        )

    @_guard
    def reversal_advice(self, request: x.ReversalAdviceReq) -> x.ReversalAdviceResp:
        # An issued STS token cannot be taken back (the vendor is liable once
        # it is issued), and a remote credit's delivery is not tracked yet:
        # no sale is reversed, the float and the vend stay as they are.
        return self._advice(
            request,
            x.ReversalEx,
            lambda original: x.ReversalAdviceResp(
                **self._header(request),
                advice_req_msg_id=request.advice_req_msg_id,
                tx_reversed=False,
            ),
        )

    # -- sales batches (batch.py) ---------------------------------------------
    def _batch_request(self, request: x.BaseReq, sales: type):
        """The terminal and a retry's stored answer: only sales batches are
        kept (bank and shift batches are the till's own business)"""
        terminal = self._enter(request)
        if not isinstance(request, sales):
            raise x.UseCaseSupportEx(
                f'{type(request).__name__}: only sales batches are kept by this server'
            )
        return terminal, self._retry(terminal, request)

    def _summary(self, terminal, batch) -> x.SalesBatch:
        "The batch's sales so far (ended: the close, or now for a subtotal)"
        company = terminal.company
        amount = reply.currency(batch.sale_amount, company)
        ended = batch.closed_at or self.now
        return x.SalesBatch(
            started=batch.opened_at.replace(tzinfo=dt.UTC),
            ended=ended if ended.tzinfo else ended.replace(tzinfo=dt.UTC),
            batch_tot=amount,
            batch_report=x.BatchReport(
                tx_total=(x.NormalSaleTotal(desc='Sales', amt=amount),),
            ),
            seq_no=batch.sequence,
        )

    def _open_batch(self, terminal, fault: type[x.XMLVendError]):
        batch = Pool().get('prepaid.vendor.batch').open_of(terminal)
        if batch is None:
            raise fault('No sales batch is open on this terminal')
        return batch

    @_guard
    def start_batch(self, request: x.StartBatchReq) -> x.StartBatchResp:
        Batch = Pool().get('prepaid.vendor.batch')
        terminal, stored = self._batch_request(request, x.StartSalesBatchReq)
        if stored is not None:
            return stored
        # The standard refuses a second open batch: the till ends it first
        # (a day batch a sale opened included).
        current = Batch.open_of(terminal)
        if current is not None:
            raise x.StartBatchEx(
                f'Sales batch {current.sequence} is open: end it first'
            )
        batch = Batch.open(terminal, self.now)
        response = x.StartBatchResp(
            **self._header(request),
            started_batch=x.SalesStartBatch(
                started=batch.opened_at.replace(tzinfo=dt.UTC),
                seq_no=batch.sequence,
            ),
        )
        self._store(terminal, request, response, batch=batch.id)
        return response

    @_guard
    def total_batch(self, request: x.TotalBatchReq) -> x.TotalBatchResp:
        terminal, stored = self._batch_request(request, x.TotalSalesBatchReq)
        if stored is not None:
            return stored
        batch = self._open_batch(terminal, x.CheckBatchTotalEx)
        response = x.TotalBatchResp(
            **self._header(request), total_batch=(self._summary(terminal, batch),)
        )
        self._store(terminal, request, response, batch=batch.id)
        return response

    @_guard
    def end_batch(self, request: x.EndBatchReq) -> x.EndBatchResp:
        Batch = Pool().get('prepaid.vendor.batch')
        terminal, stored = self._batch_request(request, x.EndSalesBatchReq)
        if stored is not None:
            return stored
        batch = self._open_batch(terminal, x.EndBatchEx)
        Batch.close([batch], self.now, 'terminal')
        batch = Batch(batch.id)
        response = x.EndBatchResp(
            **self._header(request), end_batch=self._summary(terminal, batch)
        )
        self._store(terminal, request, response, batch=batch.id)
        return response

    # -- free basic electricity -----------------------------------------------
    def _fbe_due(self, meter) -> None:
        """Refuse (``FBEEx``) a meter with no free basic electricity to
        collect now: its tariff grants none, it is credited in money, or
        this month's was issued.  The quote is the vending core's (the same
        calculation as the sale): its FBE kWh are what the sale would issue."""
        Vend = Pool().get('prepaid.vend')
        tariff, version = self._tariff(meter)
        if not version.fbe_kwh_per_month:
            raise x.FBEEx(
                f'Meter {meter.serial} has no free basic electricity: tariff '
                f'{tariff.rec_name} grants none',
                cust_msg='No free basic electricity on this meter',
            )
        if meter.payment_mode == 'remote_prepaid':
            raise x.FBEEx(
                f'Meter {meter.serial} is credited in money: free basic '
                'electricity is not issued as a token to it'
            )
        if self._fbe_taken(meter):
            raise self._fbe_issued(meter)
        quote = Vend.trial(meter, tender=ZERO, channel=CHANNEL)
        if not quote.fbe_kwh:
            raise self._fbe_issued(meter)

    @staticmethod
    def _fbe_taken(meter) -> bool:
        "Whether the meter's month position (the vending core's) has its FBE"
        Position = Pool().get('prepaid.meter.month_position')
        # The month as the vending core counts it (vend_pipeline.prepare).
        month = dt.date.today().replace(day=1)
        position, _ = Position.get_with_year(meter, month)
        return bool(position.fbe_issued)

    def _fbe_issued(self, meter) -> x.FBEEx:
        return x.FBEEx(
            f'The free basic electricity of meter {meter.serial} for this month '
            'was already issued',
            cust_msg='Free basic electricity already issued this month',
        )

    @_guard
    def fbe_vend(self, request: x.FBEReq) -> x.FBEResp:
        """The month's free basic electricity on its own: a vend of the core
        at zero tender (which issues only the FBE token), nothing drawn from
        the float, recorded as the vendor's sale (no commission: nothing was
        paid) in the terminal's batch, its answer stored per msgID"""
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        terminal = self._terminal(request)
        stored = self._retry(terminal, request)
        if stored is not None:
            return stored
        if not isinstance(request.resource, x.Electricity):
            raise x.UseCaseSupportEx(
                f'{type(request.resource).__name__}: only electricity is sold'
            )
        meter = self._meter(terminal, request.id_method)
        self._check_key_change(meter)
        self._allow(terminal, core.Kind.FBE, ZERO, meter)
        self._fbe_due(meter)
        with Transaction().set_context(company=terminal.company.id):
            try:
                vend = Vend.vend(
                    meter,
                    ZERO,
                    PAYMENT_METHOD,
                    None,
                    KEY_PREFIX + request.idempotency_key,
                    channel=CHANNEL,
                )
            except UserError:
                # Another till issued it between the check and the meter's
                # lock: the core refuses a zero tender with no FBE due.
                if self._fbe_taken(meter):
                    raise self._fbe_issued(meter) from None
                raise
        if not vend.fbe_kwh:
            # The fault rolls this empty vend back.
            raise self._fbe_issued(meter)
        with without_check_access():
            receipt = reply.receipt(
                terminal.company,
                meter,
                vend.number,
                ZERO,
                reply.vend_items(vend),
                ZERO,
                reply.vend_tokens(vend),
                vend.tariff,
                vend.tariff_version,
            )
        pool.get('prepaid.vendor.sale').record(terminal, vend, self.now)
        company = terminal.company
        available = terminal.outlet.vendor.float_state().available
        response = x.FBEResp(
            **self._header(request),
            disp_header='FREE BASIC ELECTRICITY',
            cust_msg=(
                'Free units sent to the meter' if meter.kind != 'sts_keypad' else None
            ),
            client_status=x.ClientStatus(
                avail_credit=reply.currency(available, company)
            ),
            utility=reply.utility(company),
            vendor=reply.vendor_detail(terminal.outlet.vendor),
            cust_vend_detail=reply.cust_detail(meter),
            credit_vend_receipt=receipt,
        )
        batch = pool.get('prepaid.vendor.batch').for_sale(terminal, self.now)
        self._store(
            terminal,
            request,
            response,
            operation='FBERequest',
            batch=batch.id,
            vend=vend.id,
            meter=meter.id,
        )
        return response

    # -- account payment -------------------------------------------------------
    @_guard
    def pay_account(self, request: x.PayAccReq) -> x.PayAccResp:
        """A payment towards the customer's debts, without a token: the
        amount drawn from the float, the debts reduced by it and the money
        booked (``vendor_float.pay_debts``), a receipt numbered by the vend
        sequence; its answer stored per msgID"""
        pool = Pool()
        Position = pool.get('prepaid.vendor.float')
        Debt = pool.get('prepaid.debt')
        terminal = self._terminal(request)
        stored = self._retry(terminal, request)
        if stored is not None:
            return stored
        account = request.pay_account
        if not isinstance(account, x.DebtRecovery):
            raise x.ServiceChrgEx(
                'Service charges are not kept as accounts by this server: only '
                'debt payments (DebtRecovery) are taken'
            )
        meter = self._meter(terminal, account.id_method)
        vendor = terminal.outlet.vendor
        company = terminal.company
        amount = request.req_amt.value
        if amount != amount.quantize(Decimal('0.01')):
            raise x.XMLVendSchemaEx(f'{amount}: at most two decimals are paid')
        customer = meter.customer
        with without_check_access():
            debts = [
                d
                for d in (Debt.open_debts(customer, company) if customer else [])
                if d.balance > 0
            ]
            owed = sum((d.balance for d in debts), ZERO)
        if not owed:
            raise x.DebtEx(
                f'The customer of meter {meter.serial} owes no debt',
                cust_msg='No debt to pay',
            )
        if amount > owed:
            raise x.DebtEx(
                f'{amount} is more than the {owed} the customer of meter '
                f'{meter.serial} owes',
                operator_msg=f'Outstanding debt {owed}',
            )
        self._allow(terminal, core.Kind.PAY_ACCOUNT, amount, meter)
        available = Position.draw(vendor.id, amount)
        if available is None:
            raise x.VendorCreditEx(
                'Insufficient vendor credit',
                operator_msg=f'Available credit {vendor.float_state().available}',
            )
        with Transaction().set_context(company=company.id):
            number, _ = vend_pipeline.new_number(accounting.VendConfig.get())
            with without_check_access():
                pay_debts(vendor, debts, amount, number, self.now.date())
        balance = owed - amount
        tx = x.DebtRecoveryTx(
            amt=reply.currency(amount, company),
            receipt_no=number,
            acc_desc=(account.desc or 'Debt payment')[:500],
            acc_no=(customer.customer_number or None) if customer else None,
            balance=reply.currency(balance, company),
        )
        response = x.PayAccResp(
            **self._header(request),
            disp_header='ACCOUNT PAYMENT - RECEIPT',
            client_status=x.ClientStatus(
                avail_credit=reply.currency(available, company)
            ),
            utility=reply.utility(company),
            vendor=reply.vendor_detail(vendor),
            cust_vend_detail=reply.cust_detail(meter),
            pay_acc_receipt=x.PayAccReceipt(
                receipt_no=number,
                transactions=x.Transactions(
                    tx=(tx,),
                    tender_amt=reply.currency(amount, company),
                    change=reply.currency(ZERO, company),
                ),
                meter_detail=reply.meter_detail(meter),
            ),
        )
        batch = pool.get('prepaid.vendor.batch').for_sale(terminal, self.now)
        self._store(
            terminal,
            request,
            response,
            operation='PayAccountRequest',
            batch=batch.id,
            meter=meter.id,
        )
        return response

    # -- vendor statement ------------------------------------------------------
    @_guard
    def vendor_statement(self, request: x.VendorStatementReq) -> x.VendorStatementResp:
        """The vendor's float this month (the utility's time zone) up to
        now: every movement of its float account, the account's balance and
        the available credit; the answer stored per msgID (a retry reads the
        statement as first answered)"""
        terminal = self._enter(request)
        stored = self._retry(terminal, request)
        if stored is not None:
            return stored
        vendor = terminal.outlet.vendor
        company = terminal.company
        with without_check_access():
            statement = vendor_statement.month_to_date(vendor, self.now)
        response = x.VendorStatementResp(
            **self._header(request),
            statement=x.VendorStatement(
                acc_no=vendor.code[:40],
                acc_bal=reply.currency(statement.closing_balance, company),
                avail_credit=reply.currency(vendor.float_state().available, company),
                line_item=tuple(
                    x.VendorStatementLineItem(
                        desc=reply.statement_text(line),
                        amt=reply.currency(line.amount, company),
                        applied_date=line.at,
                    )
                    for line in statement.lines
                ),
            ),
        )
        self._store(terminal, request, response, operation='VendorStatementRequest')
        return response

    @_guard
    def login(self, request: x.LoginReq) -> x.LoginUser:
        """An operator logs in on a terminal that requires one: who it is,
        its vendor's available credit and the amounts the chain with the
        operator allows (0: no bound).  A ``newPassword`` in authCred
        replaces the operator's password.  Nothing else is written: every
        later request carries the operator's credentials again."""
        terminal = self._enter(request)
        operator = self.operator
        if operator is None:
            raise x.UseCaseSupportEx(
                f'Terminal {terminal.rec_name} has no operators (a service '
                'terminal): there is nothing to log in to'
            )
        new_password = request.auth_cred.new_password
        if new_password:
            Operator = Pool().get('prepaid.vendor.operator')
            Operator.write([operator], {'password': new_password})
        vendor = terminal.outlet.vendor
        low, high = core.vend_range(terminal.limits_chain(operator))
        # A login has no response header; the core still answers its faults.
        return x.LoginUser(
            id=operator.id,
            tid=terminal.id,
            cdu_id=vendor.id,
            cdu_name=(vendor.rec_name or '')[:120] or None,
            cdu_balance=vendor.float_state().available,
            min_vend_amt=low or ZERO,
            max_vend_amt=high or ZERO,
            login_time=self.now,
        )
