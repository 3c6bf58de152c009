"""Types of the XMLVend base namespace: identities, money, meters, tokens, the
request and response headers, and advice (last response, confirmation,
reversal).

Class names are the standard's type names; field names are snake_case and
each says its XML name.  Amounts are ``Decimal``.  Passwords, card numbers and
card codes are kept out of ``repr()``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from .binding import attr, elem, is_xml_type, xml_type
from .namespaces import BASE
from .values import (
    ACCOUNT_NO,
    ADDRESS,
    AT,
    BANK_CARD_CV_NUM,
    BANK_CARD_EXPIRY,
    BATCH_STATUS,
    BRANCH_CODE,
    CHEQUE_NO,
    CHEQUE_TYPE,
    CONTACT_NO,
    CURRENCY_SYMBOL,
    DEVICE_TEXT_ID,
    EAN,
    ID_NO,
    KRN,
    LOC_REF,
    MICR,
    MSG,
    MSG_ID_DATE_TIME,
    MSG_ID_UNIQUE_NUMBER,
    MSNO,
    OP_NAME,
    ORGANISATION_NAME,
    PASSWORD,
    PERSON_NAME,
    SGC,
    SI_UNIT,
    STS_CIPHER,
    TAX_REF,
    TI,
    TRACK2,
    TT,
    si_unit,
)


# ------------------------------------------------------------------ identities
@xml_type(BASE, abstract=True)
class DeviceID:
    "Identifies a client, a server or a terminal"

    @property
    def key(self) -> str:
        "A stable text form for look-ups: ``ean:<digits>`` or ``id:<text>``"
        raise NotImplementedError


@xml_type(BASE)
class EANDeviceID(DeviceID):
    ean: Annotated[str, EAN] = attr("ean")

    @property
    def key(self) -> str:
        return f"ean:{self.ean}"


@xml_type(BASE)
class GenericDeviceID(DeviceID):
    id: Annotated[str, DEVICE_TEXT_ID] = attr("id")

    @property
    def key(self) -> str:
        return f"id:{self.id}"


_MSG_ID_FORMATS = (
    # (digits, strptime format): the standard's yyyyMMddHHmmss first, then what
    # clients are seen to send.
    (12, "%Y%m%d%H%M"),
    (14, "%Y%m%d%H%M%S"),
)


@xml_type(BASE)
class MsgID:
    """A request's identity within its client: ``dateTime`` + ``uniqueNumber``.

    Both are kept exactly as sent and echoed verbatim in ``reqMsgID``; the
    idempotency :attr:`key` ignores leading zeros of the unique number.
    """

    date_time: Annotated[str, MSG_ID_DATE_TIME] = attr("dateTime")
    unique_number: Annotated[str, MSG_ID_UNIQUE_NUMBER] = attr("uniqueNumber")

    @property
    def key(self) -> str:
        "``<dateTime>:<uniqueNumber as a number>``: the same for 0042 and 42"
        return f"{self.date_time}:{int(self.unique_number)}"

    @property
    def timestamp(self) -> datetime | None:
        """When the client says it sent the request, if the digits read as a
        plausible date (year-first, else day-first); None otherwise.  For logs
        and cut-off reports only: a msgID is an identifier, never refused for
        its date."""
        digits = self.date_time
        if len(digits) > 14:
            digits = digits[:14]  # 15-17 digits: fractions of a second
        for length, pattern in _MSG_ID_FORMATS:
            if len(digits) != length:
                continue
            for candidate in (pattern, pattern.replace("%Y%m%d", "%d%m%Y")):
                try:
                    value = datetime.strptime(digits, candidate)
                except ValueError:
                    continue
                if 2000 <= value.year <= 2099:
                    return value
        return None


@xml_type(BASE)
class AuthCred:
    "An operator's name and password (and a new password to change it)"

    op_name: Annotated[str, OP_NAME] = elem("opName")
    password: Annotated[str, PASSWORD] | None = elem("password", None, secret=True)
    new_password: Annotated[str, PASSWORD] | None = elem(
        "newPassword", None, secret=True
    )


# ------------------------------------------------------------ money and units
@xml_type(BASE)
class Currency:
    value: Decimal = attr("value")
    symbol: Annotated[str, CURRENCY_SYMBOL] | None = attr("symbol", None)


@xml_type(BASE)
class Units:
    "An amount of a resource; kWh, KWh and KWH all become kWh"

    value: Decimal = attr("value")
    si_unit: Annotated[str, SI_UNIT] = attr("siUnit")

    def __post_init__(self) -> None:
        object.__setattr__(self, "si_unit", si_unit(self.si_unit))


@xml_type(BASE)
class Tax:
    amt: Currency = elem("amt")


@xml_type(BASE)
class VAT(Tax):
    "Hexing sends the rate as a fraction (0.1500 for 15 %)"

    rate: Decimal = attr("rate")


# ------------------------------------------------------------------ resources
@xml_type(BASE, abstract=True)
class Resource:
    "What is sold; a request without one is for electricity"


@xml_type(BASE)
class Electricity(Resource):
    pass


@xml_type(BASE)
class Water(Resource):
    pass


@xml_type(BASE)
class Gas(Resource):
    pass


@xml_type(BASE)
class ConnectionTime(Resource):
    pass


@xml_type(BASE)
class CurrencyResource(Resource):
    pass


Resource.__xml_default__ = Electricity


# --------------------------------------------------------- meters, customers
@xml_type(BASE)
class MeterType:
    at: Annotated[str, AT] = attr("at")
    tt: Annotated[str, TT] = attr("tt")


@xml_type(BASE, abstract=True)
class MeterIdentifier:
    pass


@xml_type(BASE)
class MeterNumber(MeterIdentifier):
    msno: Annotated[str, MSNO] = attr("msno")


@xml_type(BASE, abstract=True)
class MeterConfig(MeterIdentifier):
    pass


@xml_type(BASE)
class MeterDetail(MeterConfig):
    meter_type: MeterType = elem("meterType")
    msno: Annotated[str, MSNO] = attr("msno")
    sgc: Annotated[str, SGC] = attr("sgc")
    krn: Annotated[int, KRN] = attr("krn")
    ti: Annotated[str, TI] = attr("ti")


@xml_type(BASE)
class ExtMeterDetail(MeterDetail):
    use_stt: bool | None = attr("useSTT", None)
    track2_data: Annotated[str, TRACK2] | None = attr("track2Data", None)


@xml_type(BASE)
class MeterCard(MeterConfig):
    track2_data: Annotated[str, TRACK2] = elem("track2Data")


@xml_type(BASE, abstract=True)
class IDMethod:
    pass


@xml_type(BASE)
class VendIDMethod(IDMethod):
    "Identifies the meter the token is for"

    meter_identifier: MeterIdentifier = elem("meterIdentifier")

    @property
    def msno(self) -> str | None:
        "The meter number, whichever way the meter is identified"
        return getattr(self.meter_identifier, "msno", None)


@xml_type(BASE, abstract=True)
class CustIdentifier:
    pass


@xml_type(BASE)
class CustAccountNo(CustIdentifier):
    organisation: Annotated[str, ORGANISATION_NAME] | None = elem("organisation", None)
    acc_no: Annotated[str, ACCOUNT_NO] = attr("accNo")


@xml_type(BASE)
class CustIDNumber(CustIdentifier):
    id_no: Annotated[str, ID_NO] = attr("idNo")


@xml_type(BASE)
class CustName(CustIdentifier):
    name: Annotated[str, PERSON_NAME] = elem("name")


@xml_type(BASE)
class CustAddress(CustIdentifier):
    address: Annotated[str, ADDRESS] = elem("address")


@xml_type(BASE)
class CustIDMethod(IDMethod):
    "Identifies the customer (account, ID number, name or address)"

    cust_identifier: CustIdentifier = elem("custIdentifier")


@xml_type(BASE)
class CustDetail:
    name: Annotated[str, PERSON_NAME] = attr("name")
    address: Annotated[str, ADDRESS] = attr("address")
    contact_no: Annotated[str, CONTACT_NO] | None = attr("contactNo", None)
    acc_no: Annotated[str, ACCOUNT_NO] | None = attr("accNo", None)
    loc_ref: Annotated[str, LOC_REF] | None = attr("locRef", None)


@xml_type(BASE)
class CustVendDetail(CustDetail):
    days_last_purchase: int | None = attr("daysLastPurchase", None)


@xml_type(BASE)
class UtilityDetail:
    name: Annotated[str, ORGANISATION_NAME] = attr("name")
    address: Annotated[str, ADDRESS] = attr("address")
    tax_ref: Annotated[str, TAX_REF] | None = attr("taxRef", None)


@xml_type(BASE)
class VendorDetail:
    name: Annotated[str, ORGANISATION_NAME] = attr("name")
    address: Annotated[str, ADDRESS] = attr("address")


# ---------------------------------------------------------------- payment
@xml_type(BASE, abstract=True)
class PayType:
    "How the customer paid the vendor"


@xml_type(BASE)
class Cash(PayType):
    tender_amt: Currency = elem("tenderAmt")

    def __post_init__(self) -> None:
        if self.tender_amt.value < 0:
            raise ValueError("the tendered amount cannot be negative")


@xml_type(BASE)
class Cheque(PayType):
    cheq_amt: Currency = elem("cheqAmt")
    acc_holder_name: Annotated[str, PERSON_NAME] = elem("accHolderName")
    acc_holder_id_no: Annotated[str, ID_NO] = elem("accHolderIDNo")
    acc_no: Annotated[str, ACCOUNT_NO] = elem("accNo", secret=True)
    bank_name: Annotated[str, ORGANISATION_NAME] = elem("bankName")
    branch_code: Annotated[str, BRANCH_CODE] = elem("branchCode")
    cheq_no: Annotated[str, CHEQUE_NO] = elem("cheqNo")
    cheq_type: Annotated[str, CHEQUE_TYPE] = elem("cheqType")
    micr: Annotated[str, MICR] | None = elem("micr", None, secret=True)


@xml_type(BASE, abstract=True)
class Card(PayType):
    card_amt: Currency = elem("cardAmt")
    acc_holder_name: Annotated[str, PERSON_NAME] = elem("accHolderName")
    pan: Annotated[str, ACCOUNT_NO] = elem("pan", secret=True)
    exp_date: Annotated[str, BANK_CARD_EXPIRY] = elem("expDate", secret=True)
    cv_num: Annotated[str, BANK_CARD_CV_NUM] = elem("cvNum", secret=True)
    clearing_house: Annotated[str, ORGANISATION_NAME] = elem("clearingHouse")


@xml_type(BASE)
class CreditCard(Card):
    pass


@xml_type(BASE)
class DebitCard(Card):
    pass


@xml_type(BASE)
class Unknown(PayType):
    "The client does not know (yet) how the customer paid"


# -------------------------------------------------------------------- tokens
@xml_type(BASE, abstract=True)
class Token:
    pass


@xml_type(BASE)
class STS1Token(Token):
    "A 20-digit STS token; a trial vend's is all zeros"

    sts_cipher: Annotated[str, STS_CIPHER] = elem("stsCipher")


@xml_type(BASE)
class KCToken(Token):
    "The two tokens of an STS key change, entered in order"

    # Secret: they carry the meter's new key (the repr and the log hide them).
    set_1st_meter_key: STS1Token = elem("set1stMeterKey", secret=True)
    set_2nd_meter_key: STS1Token = elem("set2ndMeterKey", secret=True)


@xml_type(BASE)
class KCTData:
    "The key data before and after a key change"

    from_sgc: Annotated[str, SGC] = attr("fromSGC")
    from_krn: Annotated[int, KRN] = attr("fromKRN")
    from_ti: Annotated[str, TI] = attr("fromTI")
    to_sgc: Annotated[str, SGC] = attr("toSGC")
    to_krn: Annotated[int, KRN] = attr("toKRN")
    to_ti: Annotated[str, TI] = attr("toTI")


@xml_type(BASE)
class PwrLmt:
    value: Decimal = attr("value")
    si_unit: Annotated[str, SI_UNIT] = attr("siUnit")


@xml_type(BASE, abstract=True)
class MeterSpecificTokenIssue:
    """A token issued for one meter.

    ``token`` is absent only when a smart meter is credited remotely through
    the head-end: there is nothing for the customer to enter (a project
    decision, docs/xmlvend.md section 4)."""

    desc: Annotated[str, MSG] = elem("desc")
    meter_detail: MeterDetail = elem("meterDetail")
    token: Token | None = elem("token", None)


@xml_type(BASE)
class CreditTokenIssue(MeterSpecificTokenIssue):
    units: Units = elem("units")
    resource: Resource = elem("resource")


@xml_type(BASE)
class SaleCredTokenIssue(CreditTokenIssue):
    "A sale: STS transaction type 000"


@xml_type(BASE)
class MCTCredTokenIssue(CreditTokenIssue):
    "Credit moved from a replaced meter: type 003"


@xml_type(BASE)
class FreeCredTokenIssue(CreditTokenIssue):
    "A free issue: type 005"


@xml_type(BASE)
class FBECredTokenIssue(CreditTokenIssue):
    "Free basic electricity: type 010"


@xml_type(BASE, abstract=True)
class MeterSpecificEngTokenIssue(MeterSpecificTokenIssue):
    pass


@xml_type(BASE)
class PwrLmtTokenIssue(MeterSpecificEngTokenIssue):
    pwr_lmt: PwrLmt = elem("pwrLmt")


@xml_type(BASE)
class KCTokenIssue(MeterSpecificEngTokenIssue):
    "A key-change token set riding on a credit vend"

    kct_data: KCTData = elem("kctData")
    pwr_lmt_token: PwrLmtTokenIssue | None = elem("pwrLmtToken", None)


@xml_type(BASE)
class Tariff:
    name: Annotated[str, MSG] = elem("name")
    desc: Annotated[str, MSG] | None = elem("desc", None)


# --------------------------------------------------------- client status
@xml_type(BASE)
class BatchStatus:
    banking: Annotated[str, BATCH_STATUS] | None = attr("banking", None)
    sales: Annotated[str, BATCH_STATUS] | None = attr("sales", None)
    shift: Annotated[str, BATCH_STATUS] | None = attr("shift", None)


@xml_type(BASE)
class ClientStatus:
    "The vendor's available credit (its float), returned with every vend"

    avail_credit: Currency = elem("availCredit")
    batch_status: BatchStatus | None = elem("batchStatus", None)


# ------------------------------------------------------- requests, responses
@xml_type(BASE, abstract=True)
class BaseReq:
    "The header of every request"

    client_id: DeviceID = elem("clientID")
    terminal_id: DeviceID = elem("terminalID")
    msg_id: MsgID = elem("msgID")
    auth_cred: AuthCred | None = elem("authCred", None)

    @property
    def idempotency_key(self) -> str:
        "The client and its msgID: what identifies this request for ever"
        return f"{self.client_id.key}/{self.msg_id.key}"


@xml_type(BASE, abstract=True)
class BaseResp:
    "The header of every response"

    client_id: DeviceID = elem("clientID")
    server_id: DeviceID = elem("serverID")
    terminal_id: DeviceID = elem("terminalID")
    req_msg_id: MsgID = elem("reqMsgID")
    resp_date_time: datetime = elem("respDateTime")
    disp_header: Annotated[str, MSG] | None = elem("dispHeader", None)
    operator_msg: Annotated[str, MSG] | None = elem("operatorMsg", None)
    cust_msg: Annotated[str, MSG] | None = elem("custMsg", None)


def reply_header(
    request: BaseReq, server_id: DeviceID, at: datetime
) -> dict[str, object]:
    """The response header fields that answer ``request``, as keyword
    arguments: ``CreditVendResp(**reply_header(req, server, now), ...)``."""
    return {
        "client_id": request.client_id,
        "server_id": server_id,
        "terminal_id": request.terminal_id,
        "req_msg_id": request.msg_id,
        "resp_date_time": at,
    }


@xml_type(BASE, abstract=True)
class BaseVendReq(BaseReq):
    "A request for a token for one meter"

    resource: Resource = elem("resource", Electricity())
    id_method: VendIDMethod = elem("idMethod")


@xml_type(BASE, abstract=True)
class BaseVendResp(BaseResp):
    client_status: ClientStatus = elem("clientStatus")
    utility: UtilityDetail = elem("utility")
    vendor: VendorDetail | None = elem("vendor", None)
    cust_vend_detail: CustVendDetail | None = elem("custVendDetail", None)


# -------------------------------------------------------------------- advice
@xml_type(BASE, abstract=True)
class AdviceReq(BaseReq):
    "Tells the server what became of an earlier request (``adviceReqMsgID``)"

    advice_req_msg_id: MsgID = elem("adviceReqMsgID")


@xml_type(BASE)
class LastRespAdviceReq(AdviceReq):
    "Send again the response to that request (after a time-out)"


@xml_type(BASE)
class ConfirmationAdviceReq(AdviceReq):
    "That request completed on the client"

    pay_type: PayType | None = elem("payType", None)


@xml_type(BASE)
class ReversalAdviceReq(AdviceReq):
    "That request did not complete on the client: undo it if policy allows"


@xml_type(BASE, abstract=True)
class AdviceResp(BaseResp):
    advice_req_msg_id: MsgID = elem("adviceReqMsgID")


@xml_type(BASE)
class LastRespAdviceResp(AdviceResp):
    "The complete original response (a fault response included)"

    last_response: BaseResp = elem("lastResponse")


@xml_type(BASE)
class ConfirmationAdviceResp(AdviceResp):
    tx_confirmed: bool = attr("txConfirmed")


@xml_type(BASE)
class ReversalAdviceResp(AdviceResp):
    tx_reversed: bool = attr("txReversed")


__all__ = [name for name, value in list(globals().items()) if is_xml_type(value)]
__all__ += ["reply_header"]
