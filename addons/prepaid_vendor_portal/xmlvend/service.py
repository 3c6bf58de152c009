"""The XMLVend service without I/O: bytes in, status and bytes out.

The transport (the trytond route) reads at most ``limits.max_body + 1`` bytes
of the HTTP body and calls :func:`handle`; the business side implements
:class:`Backend`: one method per operation, taking the typed request and
returning the typed response, or raising an :class:`~.faults.XMLVendError`.
Anything else a backend raises becomes a ``SystemEx`` whose description holds
only a reference to the server log (never a stack trace).  A backend whose
transport will run the request again (a database serialisation failure)
raises :class:`RunAgain`: the same fault, logged as the routine event it is.

Dispatch is on the Body's element; SOAPAction is only logged.  Idempotency
and storage are the backend's: :func:`process` returns the parsed request and
the answer with the bytes, for the dispute log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from .base import (
    BaseReq,
    BaseResp,
    ConfirmationAdviceReq,
    ConfirmationAdviceResp,
    DeviceID,
    LastRespAdviceReq,
    LastRespAdviceResp,
    ReversalAdviceReq,
    ReversalAdviceResp,
)
from .codec import BadRequest, Response, read_request, render_fault, render_response
from .faults import SystemEx, XMLVendError
from .meter import ConfirmMeterReq, ConfirmMeterResp
from .operations import BY_ELEMENT
from .revenue import (
    ConfirmCustomerReq,
    ConfirmCustomerResp,
    CreditVendReq,
    CreditVendResp,
    EndBatchReq,
    EndBatchResp,
    FBEReq,
    FBEResp,
    LoginReq,
    LoginUser,
    PayAccReq,
    PayAccResp,
    ReprintReq,
    ReprintResp,
    StartBatchReq,
    StartBatchResp,
    TotalBatchReq,
    TotalBatchResp,
    TrialCreditVendReq,
    TrialCreditVendResp,
    VendorStatementReq,
    VendorStatementResp,
)
from .safexml import REQUEST_LIMITS, Limits
from .soap import SoapFault, SoapVersion, http_status

log = logging.getLogger(__name__)


class RunAgain(Exception):
    """Raised by a backend whose transport will run the request again (e.g.
    a database serialisation failure): not an error of the server."""


class Backend(Protocol):
    """What the business layer implements (the Tryton layer, or a test fake).

    ``server_id`` identifies this server in every response header.  Each
    method answers one operation for an authenticated-looking request: the
    backend checks the credentials (``request.auth_cred``, the terminal's
    client and terminal IDs), the limits and the idempotency key
    (``request.idempotency_key``), and raises an XMLVendError to refuse.
    Build response headers with :func:`~.base.reply_header`.
    """

    server_id: DeviceID

    def confirm_customer(self, request: ConfirmCustomerReq) -> ConfirmCustomerResp: ...

    def confirm_meter(self, request: ConfirmMeterReq) -> ConfirmMeterResp: ...

    def trial_credit_vend(self, request: TrialCreditVendReq) -> TrialCreditVendResp: ...

    def credit_vend(self, request: CreditVendReq) -> CreditVendResp: ...

    def fbe_vend(self, request: FBEReq) -> FBEResp: ...

    def reprint(self, request: ReprintReq) -> ReprintResp: ...

    def last_response_advice(
        self, request: LastRespAdviceReq
    ) -> LastRespAdviceResp: ...

    def confirmation_advice(
        self, request: ConfirmationAdviceReq
    ) -> ConfirmationAdviceResp: ...

    def reversal_advice(self, request: ReversalAdviceReq) -> ReversalAdviceResp: ...

    def pay_account(self, request: PayAccReq) -> PayAccResp: ...

    def vendor_statement(self, request: VendorStatementReq) -> VendorStatementResp: ...

    def start_batch(self, request: StartBatchReq) -> StartBatchResp: ...

    def total_batch(self, request: TotalBatchReq) -> TotalBatchResp: ...

    def end_batch(self, request: EndBatchReq) -> EndBatchResp: ...

    def login(self, request: LoginReq) -> LoginUser: ...


@dataclass(frozen=True)
class Exchange:
    """One request and its answer.

    ``request`` is None when the body could not be read as a request;
    exactly one of ``response`` and ``fault`` is set."""

    status: int
    content_type: str
    body: bytes
    operation: str | None
    request: BaseReq | None
    response: Response | None
    fault: XMLVendError | SoapFault | None

    @property
    def reply(self) -> tuple[int, str, bytes]:
        return self.status, self.content_type, self.body


def handle(
    body: bytes,
    content_type: str | None,
    soap_action: str | None,
    backend: Backend,
    *,
    limits: Limits = REQUEST_LIMITS,
) -> tuple[int, str, bytes]:
    "(HTTP status, Content-Type, body) answering one POSTed request"
    return process(body, content_type, soap_action, backend, limits=limits).reply


def process(
    body: bytes,
    content_type: str | None,
    soap_action: str | None,
    backend: Backend,
    *,
    limits: Limits = REQUEST_LIMITS,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Exchange:
    "As :func:`handle`, with what was read and answered"
    at = clock()
    try:
        request = read_request(body, content_type, limits)
    except BadRequest as bad:
        log.info(
            "XMLVend request refused (%s): %s", bad.element or "unreadable", bad.fault
        )
        known = BY_ELEMENT.get(bad.element or "")
        name = known.name if known else bad.element
        return _fault(bad.fault, bad.version, bad.header, backend, at, name)
    operation = request.operation
    message = request.message
    action = (soap_action or "").strip().strip('"')
    if action and action.rpartition("/")[2] != operation.name:
        log.debug("SOAPAction %r ignored: the Body holds %s", action, operation.name)
    route = operation.route(message)
    try:
        response = getattr(backend, route.method)(message)
        _check(response, route.response, message)
        data = render_response(response, operation, request.version)
    except RunAgain:
        # The transport runs the request again: this answer is never sent.
        log.info("XMLVend %s %s to run again", operation.name, message.idempotency_key)
        fault = SystemEx("The server could not process the request: try again")
        return _fault(fault, request.version, message, backend, at, operation.name)
    except XMLVendError as fault:
        log.info(
            "XMLVend %s %s refused: %s %s",
            operation.name,
            message.idempotency_key,
            fault.wire_type,
            fault.desc,
        )
        return _fault(fault, request.version, message, backend, at, operation.name)
    except Exception:
        reference = uuid.uuid4().hex[:12]
        log.exception(
            "XMLVend %s %s failed (reference %s)",
            operation.name,
            message.idempotency_key,
            reference,
        )
        fault = SystemEx(
            f"The server could not process the request (reference {reference})"
        )
        return _fault(fault, request.version, message, backend, at, operation.name)
    log.info("XMLVend %s %s answered", operation.name, message.idempotency_key)
    return Exchange(
        200,
        request.version.content_type,
        data,
        operation.name,
        message,
        response,
        None,
    )


def _check(response: object, expected: type, request: BaseReq) -> None:
    "Guard against a backend answering with the wrong type or someone else's header"
    if type(response) is not expected:
        raise TypeError(f"expected {expected.__name__}, got {type(response).__name__}")
    if isinstance(response, BaseResp) and (
        response.client_id != request.client_id
        or response.terminal_id != request.terminal_id
        or response.req_msg_id.key != request.msg_id.key
    ):
        raise ValueError("the response header does not answer the request")


def _fault(
    fault: XMLVendError | SoapFault,
    version: SoapVersion,
    header: BaseReq | None,
    backend: Backend,
    at: datetime,
    operation: str | None,
) -> Exchange:
    code = fault.code if isinstance(fault, SoapFault) else fault.soap_code
    try:
        data = render_fault(fault, version, header, backend.server_id, at)
    except Exception:
        # A fault that cannot be written with its header (a bad server_id):
        # still answer, without the detail.
        log.exception("XMLVend fault could not be rendered with its header")
        data = render_fault(SoapFault(code, "Server error"), version, None, None, at)
    return Exchange(
        http_status(version, code),
        version.content_type,
        data,
        operation,
        header,
        None,
        fault,
    )
