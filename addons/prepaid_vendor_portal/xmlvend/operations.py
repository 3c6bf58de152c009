"""The operations this server offers: request element, backend method,
response element.  The WSDL, the dispatcher and the docs' table all come from
this one list."""

from __future__ import annotations

from dataclasses import dataclass

from . import base, meter, revenue
from .namespaces import BASE, METER, REVENUE


@dataclass(frozen=True)
class Route:
    "Requests of ``request`` go to ``backend.<method>``, which returns ``response``"

    request: type
    method: str
    response: type


@dataclass(frozen=True)
class Operation:
    name: str  # WSDL operation name, also its SOAPAction
    request_ns: str
    request_element: str
    request_type: type
    response_ns: str
    response_element: str
    response_type: type
    routes: tuple[Route, ...]
    summary: str

    def route(self, request: object) -> Route:
        for route in self.routes:
            if isinstance(request, route.request):
                return route
        raise LookupError(type(request).__name__)  # pragma: no cover


def _op(
    name: str,
    request: tuple[str, str, type],
    response: tuple[str, str, type],
    method: str,
    summary: str,
    routes: tuple[Route, ...] = (),
) -> Operation:
    return Operation(
        name,
        *request,
        *response,
        routes or (Route(request[2], method, response[2]),),
        summary,
    )


OPERATIONS: tuple[Operation, ...] = (
    _op(
        "ConfirmCustomerRequest",
        (REVENUE, "confirmCustomerReq", revenue.ConfirmCustomerReq),
        (REVENUE, "confirmCustomerResp", revenue.ConfirmCustomerResp),
        "confirm_customer",
        "Customer details and whether they may buy, by meter or customer",
    ),
    _op(
        "ConfirmMeterRequest",
        (METER, "confirmMeterReq", meter.ConfirmMeterReq),
        (METER, "confirmMeterResp", meter.ConfirmMeterResp),
        "confirm_meter",
        "The meter's STS data (SGC, KRN, TI, AT, TT)",
    ),
    _op(
        "TrialCreditVendRequest",
        (REVENUE, "trialCreditVendReq", revenue.TrialCreditVendReq),
        (REVENUE, "trialCreditVendResp", revenue.TrialCreditVendResp),
        "trial_credit_vend",
        "What a sale would give; no money, the token is all zeros",
    ),
    _op(
        "CreditVendRequest",
        (REVENUE, "creditVendReq", revenue.CreditVendReq),
        (REVENUE, "creditVendResp", revenue.CreditVendResp),
        "credit_vend",
        "A sale: token for a keypad meter, remote credit for a smart meter",
    ),
    _op(
        "FBERequest",
        (REVENUE, "fbeReq", revenue.FBEReq),
        (REVENUE, "fbeResp", revenue.FBEResp),
        "fbe_vend",
        "The month's free basic electricity token",
    ),
    _op(
        "ReprintRequest",
        (REVENUE, "reprintReq", revenue.ReprintReq),
        (REVENUE, "reprintResp", revenue.ReprintResp),
        "reprint",
        "The meter's last transactions, as first answered",
    ),
    _op(
        "AdviceRequest",
        (BASE, "adviceReq", base.AdviceReq),
        (BASE, "adviceResp", base.AdviceResp),
        "",
        "Last response, confirmation or reversal of an earlier request",
        (
            Route(
                base.LastRespAdviceReq, "last_response_advice", base.LastRespAdviceResp
            ),
            Route(
                base.ConfirmationAdviceReq,
                "confirmation_advice",
                base.ConfirmationAdviceResp,
            ),
            Route(base.ReversalAdviceReq, "reversal_advice", base.ReversalAdviceResp),
        ),
    ),
    _op(
        "PayAccountRequest",
        (REVENUE, "payAccReq", revenue.PayAccReq),
        (REVENUE, "payAccResp", revenue.PayAccResp),
        "pay_account",
        "A payment towards a customer's debt or service charge",
    ),
    _op(
        "VendorStatementRequest",
        (REVENUE, "vendorStatementReq", revenue.VendorStatementReq),
        (REVENUE, "vendorStatementResp", revenue.VendorStatementResp),
        "vendor_statement",
        "The vendor's float: balance, available credit, the month's movements",
    ),
    _op(
        "StartBatchRequest",
        (REVENUE, "startBatchReq", revenue.StartBatchReq),
        (REVENUE, "startBatchResp", revenue.StartBatchResp),
        "start_batch",
        "Open a bank, sales or shift batch (or all)",
    ),
    _op(
        "TotalBatchRequest",
        (REVENUE, "totalBatchReq", revenue.TotalBatchReq),
        (REVENUE, "totalBatchResp", revenue.TotalBatchResp),
        "total_batch",
        "Subtotal of a batch (or all); the batch stays open",
    ),
    _op(
        "EndBatchRequest",
        (REVENUE, "endBatchReq", revenue.EndBatchReq),
        (REVENUE, "endBatchResp", revenue.EndBatchResp),
        "end_batch",
        "Close a batch (or all) and return its summary",
    ),
    _op(
        "LoginRequest",
        (REVENUE, "loginReq", revenue.LoginReq),
        (REVENUE, "user", revenue.LoginUser),
        "login",
        "An operator logs in (Hexing extension): vendor balance and limits",
    ),
)

BY_ELEMENT: dict[str, Operation] = {op.request_element: op for op in OPERATIONS}
BY_RESPONSE_ELEMENT: dict[str, Operation] = {
    op.response_element: op for op in OPERATIONS
}
