"""Types of the XMLVend revenue namespace: sales (credit vend, trial, FBE),
receipts, confirm customer, reprint, pay account, vendor statement, login and
batches.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from .base import (
    BaseReq,
    BaseResp,
    BaseVendReq,
    BaseVendResp,
    CreditTokenIssue,
    Currency,
    CustVendDetail,
    IDMethod,
    KCTokenIssue,
    MeterDetail,
    PayType,
    Tariff,
    Tax,
    Units,
)
from .binding import attr, elem, is_xml_type, xml_type
from .namespaces import REVENUE
from .values import (
    ACCOUNT_NO,
    BANK_BATCH_SEQ_NO,
    BANK_REG_NO,
    BRANCH_CODE,
    MSG,
    OP_NAME,
    ORGANISATION_NAME,
    PERSON_NAME,
    RECEIPT_NO,
    REF_NO,
    SHIFT_SALES_SEQ_NO,
    TX_SEQ_NO,
)


# ---------------------------------------------------------------- credit vend
@xml_type(REVENUE, abstract=True)
class PurchaseValue:
    "What the customer buys: an amount of money or of units"


@xml_type(REVENUE)
class PurchaseValueCurrency(PurchaseValue):
    amt: Currency = elem("amt")

    def __post_init__(self) -> None:
        if self.amt.value <= 0:
            raise ValueError("the purchase amount must be positive")


@xml_type(REVENUE)
class PurchaseValueUnits(PurchaseValue):
    units: Units = elem("units")

    def __post_init__(self) -> None:
        if self.units.value <= 0:
            raise ValueError("the purchase units must be positive")


@xml_type(REVENUE, abstract=True)
class AbstractCreditVendReq(BaseVendReq):
    purchase_value: PurchaseValue = elem("purchaseValue")
    pay_type: PayType | None = elem("payType", None)


@xml_type(REVENUE)
class CreditVendReq(AbstractCreditVendReq):
    "A sale: a credit token (keypad meter) or remote credit (smart meter)"


@xml_type(REVENUE)
class TrialCreditVendReq(AbstractCreditVendReq):
    "What a sale would give, without selling (the token is all zeros)"


@xml_type(REVENUE)
class FBEReq(BaseVendReq):
    "The month's free basic electricity token"


# -------------------------------------------------------------------- receipts
@xml_type(REVENUE, abstract=True)
class Tx:
    "One line of a receipt"

    amt: Currency = elem("amt")
    tax: tuple[Tax, ...] = elem("tax", ())
    receipt_no: Annotated[str, RECEIPT_NO] | None = attr("receiptNo", None)


@xml_type(REVENUE)
class CreditVendTx(Tx):
    credit_token_issue: CreditTokenIssue = elem("creditTokenIssue")
    kc_token_issue: KCTokenIssue | None = elem("kcTokenIssue", None)
    tariff: Tariff | None = elem("tariff", None)


@xml_type(REVENUE)
class PayAccTx(Tx):
    acc_desc: Annotated[str, MSG] = elem("accDesc")
    acc_no: Annotated[str, ACCOUNT_NO] | None = elem("accNo", None)
    tariff: Tariff | None = elem("tariff", None)


@xml_type(REVENUE)
class DebtRecoveryTx(PayAccTx):
    balance: Currency | None = elem("balance", None)


@xml_type(REVENUE)
class ServiceChrgTx(PayAccTx):
    pass


@xml_type(REVENUE)
class Transactions:
    tx: tuple[Tx, ...] = elem("tx", ())
    less_round: Currency | None = elem("lessRound", None)
    tender_amt: Currency | None = elem("tenderAmt", None)
    change: Currency | None = elem("change", None)


@xml_type(REVENUE, abstract=True)
class Receipt:
    transactions: Transactions = elem("transactions")
    receipt_no: Annotated[str, RECEIPT_NO] = attr("receiptNo")


@xml_type(REVENUE)
class CreditVendReceipt(Receipt):
    pass


@xml_type(REVENUE)
class PayAccReceipt(Receipt):
    meter_detail: MeterDetail | None = elem("meterDetail", None)


@xml_type(REVENUE)
class CreditVendResp(BaseVendResp):
    credit_vend_receipt: CreditVendReceipt = elem("creditVendReceipt")


@xml_type(REVENUE)
class TrialCreditVendResp(CreditVendResp):
    pass


@xml_type(REVENUE)
class FBEResp(CreditVendResp):
    pass


# ------------------------------------------------------------ confirm customer
@xml_type(REVENUE)
class CustVendConfig:
    can_vend: bool = elem("canVend")
    fbe_due: bool | None = elem("fbeDue", None)
    max_vend_amt: Currency | None = elem("maxVendAmt", None)
    min_vend_amt: Currency | None = elem("minVendAmt", None)


@xml_type(REVENUE)
class ConfirmCustResult:
    cust_vend_detail: CustVendDetail = elem("custVendDetail")
    cust_vend_config: CustVendConfig = elem("custVendConfig")
    meter_detail: MeterDetail | None = elem("meterDetail", None)


@xml_type(REVENUE)
class ConfirmCustomerReq(BaseReq):
    "Who is behind this meter or account, and may they buy?"

    id_method: IDMethod = elem("idMethod")


@xml_type(REVENUE)
class ConfirmCustomerResp(BaseResp):
    confirm_cust_result: tuple[ConfirmCustResult, ...] = elem("confirmCustResult", ())


# --------------------------------------------------------------------- reprint
@xml_type(REVENUE)
class ReprintReq(BaseReq):
    "The last transactions of a meter (or customer), as first answered"

    id_method: IDMethod = elem("idMethod")


@xml_type(REVENUE)
class ReprintResp(BaseResp):
    reprint: tuple[BaseVendResp, ...] = elem("reprint", ())


# ----------------------------------------------------------------- pay account
@xml_type(REVENUE, abstract=True)
class PayAccount:
    desc: Annotated[str, MSG] | None = elem("desc", None)
    id_method: IDMethod = elem("idMethod")


@xml_type(REVENUE)
class DebtRecovery(PayAccount):
    "A payment towards the customer's arrears"


@xml_type(REVENUE)
class ServiceChrg(PayAccount):
    "A payment of a service charge"


@xml_type(REVENUE)
class PayAccReq(BaseReq):
    req_amt: Currency = elem("reqAmt")
    pay_type: PayType | None = elem("payType", None)
    pay_account: PayAccount = elem("payAccount")

    def __post_init__(self) -> None:
        if self.req_amt.value <= 0:
            raise ValueError("the amount paid must be positive")


@xml_type(REVENUE)
class PayAccResp(BaseVendResp):
    pay_acc_receipt: PayAccReceipt = elem("payAccReceipt")


# ------------------------------------------------------------ vendor statement
@xml_type(REVENUE)
class VendorStatementLineItem:
    desc: Annotated[str, MSG] = elem("desc")
    amt: Currency = elem("amt")
    applied_date: datetime = elem("appliedDate")


@xml_type(REVENUE)
class VendorStatement:
    acc_no: Annotated[str, ACCOUNT_NO] = elem("accNo")
    acc_bal: Currency = elem("accBal")
    avail_credit: Currency = elem("availCredit")
    line_item: tuple[VendorStatementLineItem, ...] = elem("lineItem", ())


@xml_type(REVENUE)
class VendorStatementReq(BaseReq):
    "The latest movements of the vendor's float"


@xml_type(REVENUE)
class VendorStatementResp(BaseResp):
    statement: VendorStatement = elem("statement")


# ----------------------------------------------------------------------- login
@xml_type(REVENUE)
class LoginReq(BaseReq):
    "An operator logs in on a terminal (a Hexing extension, answered by user)"


@xml_type(REVENUE)
class LoginUser:
    """The operator's terminal and vendor (CDU) with its balance and vend
    limits; it carries no response header"""

    id: int = elem("ID")
    tid: int = elem("TID")
    cdu_id: int = elem("CDUID")
    cdu_name: Annotated[str, ORGANISATION_NAME] | None = elem("CDUName", None)
    cdu_balance: Decimal = elem("CDUBalance")
    min_vend_amt: Decimal = elem("MinVendAmt")
    max_vend_amt: Decimal = elem("MaxVendAmt")
    login_time: datetime = elem("LoginTime")


# --------------------------------------------------------------------- batches
@xml_type(REVENUE, abstract=True)
class StartBatchReq(BaseReq):
    pass


@xml_type(REVENUE)
class StartBankBatchReq(StartBatchReq):
    pass


@xml_type(REVENUE)
class StartSalesBatchReq(StartBatchReq):
    pass


@xml_type(REVENUE)
class StartShiftBatchReq(StartBatchReq):
    pass


@xml_type(REVENUE)
class StartAllBatchesReq(StartBatchReq):
    pass


@xml_type(REVENUE)
class StartBatch:
    started: datetime = elem("started")


@xml_type(REVENUE)
class ShiftStartBatch(StartBatch):
    seq_no: Annotated[int, SHIFT_SALES_SEQ_NO] = attr("seqNo")


@xml_type(REVENUE)
class SalesStartBatch(StartBatch):
    shift_start_batch: tuple[ShiftStartBatch, ...] = elem("shiftStartBatch", ())
    seq_no: Annotated[int, SHIFT_SALES_SEQ_NO] = attr("seqNo")


@xml_type(REVENUE)
class BankStartBatch(StartBatch):
    sales_start_batch: tuple[SalesStartBatch, ...] = elem("salesStartBatch", ())
    seq_no: Annotated[int, BANK_BATCH_SEQ_NO] = attr("seqNo")


@xml_type(REVENUE)
class StartBatchResp(BaseResp):
    started_batch: StartBatch = elem("startedBatch")


@xml_type(REVENUE)
class TxTotal:
    desc: Annotated[str, MSG] = elem("desc")
    amt: Currency = elem("amt")


@xml_type(REVENUE)
class NormalSaleTotal(TxTotal):
    pass


@xml_type(REVENUE)
class FreeIssueTotal(TxTotal):
    pass


@xml_type(REVENUE)
class MeterCreditTransferTotal(TxTotal):
    pass


@xml_type(REVENUE)
class CancellationTotal(TxTotal):
    pass


@xml_type(REVENUE)
class AccPaymentTotal(TxTotal):
    pass


@xml_type(REVENUE)
class DebtRecoveryTotal(AccPaymentTotal):
    pass


@xml_type(REVENUE)
class ServiceChrgTotal(AccPaymentTotal):
    pass


@xml_type(REVENUE)
class OperatorTotal:
    op_name: Annotated[str, OP_NAME] = elem("opName")
    amt: Currency = elem("amt")


@xml_type(REVENUE)
class PayTypeTotal:
    desc: Annotated[str, MSG] = elem("desc")
    amt: Currency = elem("amt")


@xml_type(REVENUE)
class CashTotal(PayTypeTotal):
    pass


@xml_type(REVENUE)
class ChequeTotal(PayTypeTotal):
    pass


@xml_type(REVENUE)
class CreditCardTotal(PayTypeTotal):
    pass


@xml_type(REVENUE)
class DebitCardTotal(PayTypeTotal):
    pass


@xml_type(REVENUE)
class OtherTotal(PayTypeTotal):
    pass


@xml_type(REVENUE)
class ResourceTotal:
    desc: Annotated[str, MSG] = elem("desc")
    units: Units = elem("units")


@xml_type(REVENUE)
class ElectricityTotal(ResourceTotal):
    pass


@xml_type(REVENUE)
class WaterTotal(ResourceTotal):
    pass


@xml_type(REVENUE)
class GasTotal(ResourceTotal):
    pass


@xml_type(REVENUE)
class ConnectionTimeTotal(ResourceTotal):
    pass


@xml_type(REVENUE)
class CurrencyTotal(ResourceTotal):
    pass


@xml_type(REVENUE)
class BatchReport:
    "A batch's sales by transaction type, operator, payment type and resource"

    tx_total: tuple[TxTotal, ...] = elem("txTotal", ())
    operator_total: tuple[OperatorTotal, ...] = elem("operatorTotal", ())
    pay_type_total: tuple[PayTypeTotal, ...] = elem("payTypeTotal", ())
    res_tot: tuple[ResourceTotal, ...] = elem("resTot", ())


@xml_type(REVENUE)
class Beneficiary:
    acc_name: Annotated[str, PERSON_NAME] | None = attr("accName", None)
    acc_no: Annotated[str, ACCOUNT_NO] = attr("accNo")
    branch_code: Annotated[str, BRANCH_CODE] | None = attr("branchCode", None)
    bank_name: Annotated[str, ORGANISATION_NAME] | None = attr("bankName", None)
    bank_reg_no: Annotated[str, BANK_REG_NO] | None = attr("bankRegNo", None)


@xml_type(REVENUE)
class DepositSlip:
    header: Annotated[str, MSG] | None = elem("header", None)
    amt: Currency = elem("amt")
    beneficiary: Beneficiary | None = elem("beneficiary", None)
    banking_ref_no: Annotated[str, REF_NO] = attr("bankingRefNo")


@xml_type(REVENUE, abstract=True)
class Batch:
    """A batch's summary; ``ended`` is the time of the summary for a batch that
    stays open (a subtotal)"""

    started: datetime = elem("started")
    ended: datetime = elem("ended")
    batch_tot: Currency = elem("batchTot")
    tot_tax: Tax | None = elem("totTax", None)
    batch_report: BatchReport | None = elem("batchReport", None)


@xml_type(REVENUE)
class ShiftBatch(Batch):
    seq_no: Annotated[int, SHIFT_SALES_SEQ_NO] = attr("seqNo")


@xml_type(REVENUE)
class SalesBatch(Batch):
    first_tx_seq_no: Annotated[int, TX_SEQ_NO] | None = elem("firstTxSeqNo", None)
    last_tx_seq_no: Annotated[int, TX_SEQ_NO] | None = elem("lastTxSeqNo", None)
    shift_batch: tuple[ShiftBatch, ...] = elem("shiftBatch", ())
    seq_no: Annotated[int, SHIFT_SALES_SEQ_NO] = attr("seqNo")


@xml_type(REVENUE)
class BankBatch(Batch):
    first_sales_seq_no: Annotated[int, SHIFT_SALES_SEQ_NO] | None = elem(
        "firstSalesSeqNo", None
    )
    last_sales_seq_no: Annotated[int, SHIFT_SALES_SEQ_NO] | None = elem(
        "lastSalesSeqNo", None
    )
    dep_slip: DepositSlip | None = elem("depSlip", None)
    sales_batch: tuple[SalesBatch, ...] = elem("salesBatch", ())
    seq_no: Annotated[int, BANK_BATCH_SEQ_NO] = attr("seqNo")


@xml_type(REVENUE, abstract=True)
class TotalBatchReq(BaseReq):
    "Subtotal: the summaries so far; the batch stays open"


@xml_type(REVENUE)
class TotalBankBatchReq(TotalBatchReq):
    pass


@xml_type(REVENUE)
class TotalSalesBatchReq(TotalBatchReq):
    pass


@xml_type(REVENUE)
class TotalShiftBatchReq(TotalBatchReq):
    pass


@xml_type(REVENUE)
class TotalAllBatchesReq(TotalBatchReq):
    pass


@xml_type(REVENUE)
class TotalBatchResp(BaseResp):
    total_batch: tuple[Batch, ...] = elem("totalBatch", ())


@xml_type(REVENUE, abstract=True)
class EndBatchReq(BaseReq):
    "Close the batch (or all batches) and return the summary"


@xml_type(REVENUE)
class EndBankBatchReq(EndBatchReq):
    pass


@xml_type(REVENUE)
class EndSalesBatchReq(EndBatchReq):
    pass


@xml_type(REVENUE)
class EndShiftBatchReq(EndBatchReq):
    pass


@xml_type(REVENUE)
class EndAllBatchesReq(EndBatchReq):
    pass


@xml_type(REVENUE)
class EndBatchResp(BaseResp):
    end_batch: Batch = elem("endBatch")


__all__ = [
    name
    for name, value in list(globals().items())
    if is_xml_type(value) and value.__xml_ns__ == REVENUE
]
