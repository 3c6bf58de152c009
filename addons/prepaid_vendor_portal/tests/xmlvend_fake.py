"""An in-memory XMLVend backend for the protocol tests.

It behaves as the Tryton layer is meant to: operators must log in with their
password, a msgID is answered once (a retry gets the stored answer, another
request reusing it a fault), the float never goes below zero, last-response
advice finds earlier answers, a token vend cannot be reversed but an
undelivered remote credit can, batches open and close.  Tokens are
placeholders (digits derived from the msgID): STS is not this core's concern.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal

from trytond.modules.prepaid_vendor_portal import xmlvend as x

NOW = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
SERVER_ID = x.EANDeviceID(ean="6009876543210")
OPERATORS = {"OPERATOR1": "secret-1", "OPERATOR2": "secret-2"}
PRICE = Decimal("1.60")  # per kWh, VAT excluded
VAT_RATE = Decimal("0.15")
CENT = Decimal("0.01")


def _meter(msno: str, sgc: str = "600727") -> x.MeterDetail:
    return x.MeterDetail(
        meter_type=x.MeterType(at="07", tt="02"), msno=msno, sgc=sgc, krn=1, ti="01"
    )


# The meters of the public samples, a smart meter and a blocked one.
METERS = {
    "14339800360": _meter("14339800360", "008000"),
    "01234567890": _meter("01234567890", "100836"),
    "04092131467": _meter("04092131467", "008024"),
    "47500000019": _meter("47500000019"),
    "99000000018": _meter("99000000018"),
}
SMART = {"47500000019"}
BLOCKED = {"99000000018"}
FBE_DUE = {"14339800360"}
CUSTOMERS = {
    msno: x.CustVendDetail(
        name=f"Customer {msno[-3:]}",
        address="1 Main Road",
        acc_no=f"ACC{msno[-5:]}",
        loc_ref="ZONE-1",
        days_last_purchase=3,
    )
    for msno in METERS
}


def currency(value: str | Decimal) -> x.Currency:
    return x.Currency(value=Decimal(value), symbol="R")


class FakeBackend:
    server_id = SERVER_ID

    def __init__(self, float_balance: str = "1000.00"):
        self.float = Decimal(float_balance)
        self.debt = {"ACC00360": Decimal("120.00")}
        self.fbe_due = set(FBE_DUE)
        self.answers: dict[str, tuple[str, x.BaseResp]] = {}
        self.by_meter: dict[str, list[x.BaseVendResp]] = {}
        self.delivered: set[str] = set()
        self.ledger: list[x.VendorStatementLineItem] = []
        self.batches = {"bank": "closed", "sales": "closed", "shift": "closed"}
        self.receipts = itertools.count(1001)
        self.sequences = itertools.count(1)
        self.calls: list[tuple[str, x.BaseReq]] = []
        self.lock = threading.Lock()

    # ----------------------------------------------------------------- helpers
    def _enter(self, name: str, request: x.BaseReq) -> None:
        self.calls.append((name, request))
        cred = request.auth_cred
        if cred is None or OPERATORS.get(cred.op_name) != cred.password:
            raise x.RequestAuthorisationEx("Operator name or password is wrong")

    def _header(self, request: x.BaseReq) -> dict[str, object]:
        return x.reply_header(request, self.server_id, NOW)

    def _meter(self, id_method: x.IDMethod) -> x.MeterDetail:
        if isinstance(id_method, x.CustIDMethod):
            ident = id_method.cust_identifier
            for msno, customer in CUSTOMERS.items():
                if (
                    isinstance(ident, x.CustAccountNo)
                    and customer.acc_no == ident.acc_no
                ):
                    return METERS[msno]
            raise x.ConfirmCustomerEx("No customer with that account number")
        msno = id_method.msno
        if msno not in METERS:
            raise x.UnknownMeterEx(
                f"Meter {msno} is not registered", cust_msg="Meter not found"
            )
        if msno in BLOCKED:
            raise x.BlockedMeterEx(f"Meter {msno} is blocked")
        return METERS[msno]

    def _once(self, request: x.BaseReq, answer):
        "Answer a msgID once; a retry of the same request gets the same answer"
        key = request.idempotency_key
        fingerprint = x.request_fingerprint(request)
        with self.lock:
            stored = self.answers.get(key)
            if stored is not None:
                if stored[0] != fingerprint:
                    raise x.DuplicateMsgID(
                        f"msgID {request.msg_id.key} was used for another request"
                    )
                return stored[1]
            response = answer()
            self.answers[key] = (fingerprint, response)
            return response

    def _status(self) -> x.ClientStatus:
        return x.ClientStatus(
            avail_credit=currency(self.float),
            batch_status=x.BatchStatus(
                banking=self.batches["bank"],
                sales=self.batches["sales"],
                shift=self.batches["shift"],
            ),
        )

    def _token(self, request: x.BaseReq) -> x.STS1Token:
        digest = hashlib.sha256(request.idempotency_key.encode()).hexdigest()
        return x.STS1Token(sts_cipher=str(int(digest, 16))[:20])

    def _sale(self, request: x.AbstractCreditVendReq, trial: bool):
        detail = self._meter(request.id_method)
        value = request.purchase_value
        if isinstance(value, x.PurchaseValueCurrency):
            tender = value.amt.value.quantize(CENT)
        else:
            if value.units.si_unit != "kWh":
                raise x.XMLVendSchemaEx(f"units in {value.units.si_unit} are not sold")
            tender = (value.units.value * PRICE * (1 + VAT_RATE)).quantize(CENT)
        if tender > self.float and not trial:
            raise x.VendorCreditEx(
                "Insufficient vendor credit",
                operator_msg=f"Available credit {self.float}",
            )
        net = (tender / (1 + VAT_RATE)).quantize(CENT)
        kwh = (net / PRICE).quantize(Decimal("0.1"), rounding=ROUND_DOWN)
        smart = detail.msno in SMART
        token = None if smart else self._token(request)
        if trial and token is not None:
            token = x.STS1Token(sts_cipher="0" * 20)
        receipt_no = "0" if trial else str(next(self.receipts))
        issue = x.SaleCredTokenIssue(
            desc="Remote credit" if smart else "Credit token",
            meter_detail=detail,
            token=token,
            units=x.Units(value=kwh, si_unit="kWh"),
            resource=x.Electricity(),
        )
        tx = x.CreditVendTx(
            amt=currency(net),
            tax=(x.VAT(amt=currency(tender - net), rate=VAT_RATE),),
            receipt_no=receipt_no,
            credit_token_issue=issue,
            tariff=x.Tariff(name="Domestic"),
        )
        if not trial:
            self.float -= tender
            self.ledger.append(
                x.VendorStatementLineItem(
                    desc=f"Sale {receipt_no}", amt=currency(-tender), applied_date=NOW
                )
            )
        cls = x.TrialCreditVendResp if trial else x.CreditVendResp
        response = cls(
            **self._header(request),
            disp_header="CREDIT VEND - TAX INVOICE",
            cust_msg="Credit sent to the meter" if smart else None,
            client_status=self._status(),
            utility=x.UtilityDetail(name="Demo Utility", address="1 Grid Street"),
            vendor=x.VendorDetail(name="Demo Vendor", address="2 Shop Road"),
            cust_vend_detail=CUSTOMERS[detail.msno],
            credit_vend_receipt=x.CreditVendReceipt(
                receipt_no=receipt_no,
                transactions=x.Transactions(
                    tx=(tx,), tender_amt=currency(tender), change=currency("0.00")
                ),
            ),
        )
        if not trial:
            self.by_meter.setdefault(detail.msno, []).append(response)
        return response

    # --------------------------------------------------------------- backend
    def confirm_customer(self, request: x.ConfirmCustomerReq) -> x.ConfirmCustomerResp:
        self._enter("confirm_customer", request)
        detail = self._meter(request.id_method)
        return x.ConfirmCustomerResp(
            **self._header(request),
            confirm_cust_result=(
                x.ConfirmCustResult(
                    cust_vend_detail=CUSTOMERS[detail.msno],
                    cust_vend_config=x.CustVendConfig(
                        can_vend=True,
                        fbe_due=detail.msno in self.fbe_due,
                        max_vend_amt=currency("1500.00"),
                        min_vend_amt=currency("5.00"),
                    ),
                    meter_detail=detail,
                ),
            ),
        )

    def confirm_meter(self, request: x.ConfirmMeterReq) -> x.ConfirmMeterResp:
        self._enter("confirm_meter", request)
        detail = self._meter(request.id_method)
        return x.ConfirmMeterResp(
            **self._header(request),
            disp_header="Confirm Meter Details",
            confirm_meter_result=x.ConfirmMeterResult(meter_detail=detail),
        )

    def trial_credit_vend(self, request: x.TrialCreditVendReq) -> x.TrialCreditVendResp:
        self._enter("trial_credit_vend", request)
        return self._sale(request, trial=True)

    def credit_vend(self, request: x.CreditVendReq) -> x.CreditVendResp:
        self._enter("credit_vend", request)
        return self._once(request, lambda: self._sale(request, trial=False))

    def fbe_vend(self, request: x.FBEReq) -> x.FBEResp:
        self._enter("fbe_vend", request)

        def answer() -> x.FBEResp:
            detail = self._meter(request.id_method)
            if detail.msno not in self.fbe_due:
                raise x.FBEEx("No free basic electricity due for this meter")
            self.fbe_due.discard(detail.msno)
            issue = x.FBECredTokenIssue(
                desc="Free basic electricity",
                meter_detail=detail,
                token=self._token(request),
                units=x.Units(value=Decimal("50.0"), si_unit="kWh"),
                resource=x.Electricity(),
            )
            receipt_no = str(next(self.receipts))
            return x.FBEResp(
                **self._header(request),
                client_status=self._status(),
                utility=x.UtilityDetail(name="Demo Utility", address="1 Grid Street"),
                cust_vend_detail=CUSTOMERS[detail.msno],
                credit_vend_receipt=x.CreditVendReceipt(
                    receipt_no=receipt_no,
                    transactions=x.Transactions(
                        tx=(
                            x.CreditVendTx(
                                amt=currency("0.00"),
                                receipt_no=receipt_no,
                                credit_token_issue=issue,
                            ),
                        )
                    ),
                ),
            )

        return self._once(request, answer)

    def reprint(self, request: x.ReprintReq) -> x.ReprintResp:
        self._enter("reprint", request)
        detail = self._meter(request.id_method)
        history = self.by_meter.get(detail.msno)
        if not history:
            raise x.ReprintEx("No transactions to reprint for this meter")
        return x.ReprintResp(**self._header(request), reprint=tuple(history[-3:]))

    def _answered(
        self, request: x.AdviceReq, missing: type[x.XMLVendError]
    ) -> x.BaseResp:
        key = f"{request.client_id.key}/{request.advice_req_msg_id.key}"
        stored = self.answers.get(key)
        if stored is None:
            raise missing(f"No transaction with msgID {request.advice_req_msg_id.key}")
        return stored[1]

    def last_response_advice(
        self, request: x.LastRespAdviceReq
    ) -> x.LastRespAdviceResp:
        self._enter("last_response_advice", request)
        original = self._answered(request, x.LastResponseEx)
        return x.LastRespAdviceResp(
            **self._header(request),
            advice_req_msg_id=request.advice_req_msg_id,
            last_response=original,
        )

    def confirmation_advice(
        self, request: x.ConfirmationAdviceReq
    ) -> x.ConfirmationAdviceResp:
        self._enter("confirmation_advice", request)
        self._answered(request, x.ConfirmationEx)
        return x.ConfirmationAdviceResp(
            **self._header(request),
            advice_req_msg_id=request.advice_req_msg_id,
            tx_confirmed=True,
        )

    def reversal_advice(self, request: x.ReversalAdviceReq) -> x.ReversalAdviceResp:
        self._enter("reversal_advice", request)
        original = self._answered(request, x.ReversalEx)
        reversed_ = False
        if isinstance(original, x.CreditVendResp):
            issue = original.credit_vend_receipt.transactions.tx[0].credit_token_issue
            key = f"{request.client_id.key}/{request.advice_req_msg_id.key}"
            if issue.token is None and key not in self.delivered:
                tender = original.credit_vend_receipt.transactions.tender_amt.value
                self.float += tender
                self.delivered.add(key)  # reversed once only
                reversed_ = True
        return x.ReversalAdviceResp(
            **self._header(request),
            advice_req_msg_id=request.advice_req_msg_id,
            tx_reversed=reversed_,
        )

    def pay_account(self, request: x.PayAccReq) -> x.PayAccResp:
        self._enter("pay_account", request)

        def answer() -> x.PayAccResp:
            detail = self._meter(request.pay_account.id_method)
            account = CUSTOMERS[detail.msno].acc_no
            owed = self.debt.get(account, Decimal(0))
            if not isinstance(request.pay_account, x.DebtRecovery) or owed <= 0:
                raise x.DebtEx("No outstanding debt on this account")
            paid = min(owed, request.req_amt.value)
            self.debt[account] = owed - paid
            receipt_no = str(next(self.receipts))
            return x.PayAccResp(
                **self._header(request),
                client_status=self._status(),
                utility=x.UtilityDetail(name="Demo Utility", address="1 Grid Street"),
                cust_vend_detail=CUSTOMERS[detail.msno],
                pay_acc_receipt=x.PayAccReceipt(
                    receipt_no=receipt_no,
                    meter_detail=detail,
                    transactions=x.Transactions(
                        tx=(
                            x.DebtRecoveryTx(
                                amt=currency(paid),
                                receipt_no=receipt_no,
                                acc_desc="Arrears",
                                acc_no=account,
                                balance=currency(self.debt[account]),
                            ),
                        )
                    ),
                ),
            )

        return self._once(request, answer)

    def vendor_statement(self, request: x.VendorStatementReq) -> x.VendorStatementResp:
        self._enter("vendor_statement", request)
        return x.VendorStatementResp(
            **self._header(request),
            statement=x.VendorStatement(
                acc_no="VENDOR-1",
                acc_bal=currency(self.float),
                avail_credit=currency(self.float),
                line_item=tuple(self.ledger[-10:]),
            ),
        )

    _KINDS = {
        "Bank": ("bank",),
        "Sales": ("sales",),
        "Shift": ("shift",),
        "All": ("bank", "sales", "shift"),
    }

    def _kinds(self, request: x.BaseReq) -> tuple[str, ...]:
        name = type(request).__name__
        for word, kinds in self._KINDS.items():
            if word in name:
                return kinds
        raise AssertionError(name)  # pragma: no cover

    def start_batch(self, request: x.StartBatchReq) -> x.StartBatchResp:
        self._enter("start_batch", request)
        kinds = self._kinds(request)
        if any(self.batches[kind] == "open" for kind in kinds):
            raise x.StartBatchEx("The batch is already open")
        for kind in kinds:
            self.batches[kind] = "open"
        shift = x.ShiftStartBatch(started=NOW, seq_no=next(self.sequences))
        if kinds == ("shift",):
            started = shift
        elif kinds == ("sales",):
            started = x.SalesStartBatch(started=NOW, seq_no=next(self.sequences))
        else:
            sales = x.SalesStartBatch(
                started=NOW, seq_no=next(self.sequences), shift_start_batch=(shift,)
            )
            started = x.BankStartBatch(
                started=NOW,
                seq_no=next(self.sequences),
                sales_start_batch=(sales,) if len(kinds) > 1 else (),
            )
        return x.StartBatchResp(**self._header(request), started_batch=started)

    def _summary(self, kind: str) -> x.Batch:
        sold = -sum((item.amt.value for item in self.ledger), Decimal(0))
        report = x.BatchReport(
            tx_total=(x.NormalSaleTotal(desc="Sales", amt=currency(sold)),),
            operator_total=(x.OperatorTotal(op_name="OPERATOR1", amt=currency(sold)),),
            pay_type_total=(x.CashTotal(desc="Cash", amt=currency(sold)),),
            res_tot=(
                x.ElectricityTotal(
                    desc="Electricity", units=x.Units(value=Decimal(0), si_unit="kWh")
                ),
            ),
        )
        common = dict(
            started=NOW, ended=NOW, batch_tot=currency(sold), batch_report=report
        )
        seq = next(self.sequences)
        if kind == "shift":
            return x.ShiftBatch(**common, seq_no=seq)
        if kind == "sales":
            return x.SalesBatch(
                **common, seq_no=seq, first_tx_seq_no=1, last_tx_seq_no=2
            )
        return x.BankBatch(
            **common,
            seq_no=seq,
            dep_slip=x.DepositSlip(
                amt=currency(sold),
                banking_ref_no=f"DEP{seq}",
                beneficiary=x.Beneficiary(acc_no="1234567", bank_name="Demo Bank"),
            ),
        )

    def total_batch(self, request: x.TotalBatchReq) -> x.TotalBatchResp:
        self._enter("total_batch", request)
        kinds = self._kinds(request)
        if any(self.batches[kind] != "open" for kind in kinds):
            raise x.CheckBatchTotalEx("The batch is not open")
        return x.TotalBatchResp(
            **self._header(request),
            total_batch=tuple(self._summary(kind) for kind in kinds),
        )

    def end_batch(self, request: x.EndBatchReq) -> x.EndBatchResp:
        self._enter("end_batch", request)
        kinds = self._kinds(request)
        if any(self.batches[kind] != "open" for kind in kinds):
            raise x.EndBatchEx("The batch is not open")
        for kind in kinds:
            self.batches[kind] = "closed"
        return x.EndBatchResp(
            **self._header(request), end_batch=self._summary(kinds[0])
        )

    def login(self, request: x.LoginReq) -> x.LoginUser:
        self._enter("login", request)
        return x.LoginUser(
            id=26,
            tid=26,
            cdu_id=7,
            cdu_name="Demo Vendor",
            cdu_balance=self.float,
            min_vend_amt=Decimal("5.00"),
            max_vend_amt=Decimal("1500.00"),
            login_time=NOW,
        )


# ------------------------------------------------------------------ messages
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
CLIENT = x.EANDeviceID(ean="6009990000012")
TERMINAL = x.GenericDeviceID(id="T-001")
_unique = itertools.count(1)


def header(**changes) -> dict[str, object]:
    "Request header fields with a fresh msgID and a good password"
    fields = {
        "client_id": CLIENT,
        "terminal_id": TERMINAL,
        "msg_id": x.MsgID(date_time="20260301103000", unique_number=str(next(_unique))),
        "auth_cred": x.AuthCred(op_name="OPERATOR1", password="secret-1"),
    }
    fields.update(changes)
    return fields


def by_msno(msno: str) -> x.VendIDMethod:
    return x.VendIDMethod(meter_identifier=x.MeterNumber(msno=msno))


def credit_vend(msno: str = "14339800360", amount: str = "115.00", **changes):
    return x.CreditVendReq(
        **header(**changes),
        id_method=by_msno(msno),
        purchase_value=x.PurchaseValueCurrency(amt=currency(amount)),
    )


def envelope(payload: bytes | str, version: str = "1.1") -> bytes:
    "A SOAP envelope around a request element"
    if isinstance(payload, bytes):
        payload = payload.decode()
    ns = SOAP11 if version == "1.1" else SOAP12
    return (
        f'<soapenv:Envelope xmlns:soapenv="{ns}"><soapenv:Body>{payload}'
        "</soapenv:Body></soapenv:Envelope>"
    ).encode()


def soap(message: x.BaseReq, version: str = "1.1") -> bytes:
    return envelope(x.encode_request(message), version)


CONTENT_TYPES = {"1.1": "text/xml; charset=utf-8", "1.2": "application/soap+xml"}
