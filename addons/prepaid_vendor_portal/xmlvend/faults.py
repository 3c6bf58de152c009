"""XMLVend faults: Python exceptions a backend raises, and their wire form.

On the wire a fault is a SOAP Fault whose detail holds ``xmlvendFaultResp``:
the response header plus ``fault xsi:type="...Ex"`` with ``desc`` (and an
optional ``faultCode``).  The class of error is the ``xsi:type``.  Each
exception class here is named after its wire type and has a frozen dataclass
twin (``cls.wire``) registered with the binding, so the schema generator and
the response reader know every fault type.

The standard's hierarchy: ``XMLVendFaultEx`` (protocol), ``BusinessRuleEx``
(the request is well formed but refused) and ``SystemEx`` (server error).
The SOAP fault code follows real deployments: ``Client`` for protocol
faults, ``Server`` for business rules (as Eskom's server answers an unknown
meter) and for system errors.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from .base import BaseResp
from .binding import REGISTRY, elem, xml_type
from .namespaces import BASE
from .values import MSG


@xml_type(BASE, abstract=True)
class Fault:
    "The wire form of a fault: its class is the xsi:type"

    desc: Annotated[str, MSG] = elem("desc")
    fault_code: Annotated[str, MSG] | None = elem("faultCode", None)


@xml_type(BASE)
class XMLVendFaultResp(BaseResp):
    fault: Fault = elem("fault")


class XMLVendError(Exception):
    """A refusal to answer a request normally.

    ``desc`` is shown to the operator; ``fault_code`` is an optional code of
    the server's own; the three messages fill the response header's
    ``dispHeader``, ``operatorMsg`` and ``custMsg``.
    """

    wire_type: ClassVar[str] = "Fault"
    wire: ClassVar[type[Fault]] = Fault
    soap_code: ClassVar[str] = "Server"

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "wire_type" in cls.__dict__:
            cls.wire = REGISTRY[cls.wire_type]
            return
        cls.wire_type = cls.__name__
        parent = cls.__mro__[1].wire
        twin = type(
            cls.__name__, (parent,), {"__module__": __name__, "__doc__": cls.__doc__}
        )
        cls.wire = xml_type(BASE)(twin)
        FAULTS[cls.__name__] = cls

    def __init__(
        self,
        desc: str,
        *,
        fault_code: str | None = None,
        disp_header: str | None = None,
        operator_msg: str | None = None,
        cust_msg: str | None = None,
    ):
        super().__init__(desc)
        self.desc = desc
        self.fault_code = fault_code
        self.disp_header = disp_header
        self.operator_msg = operator_msg
        self.cust_msg = cust_msg

    def to_wire(self) -> Fault:
        return self.wire(desc=self.desc[:500], fault_code=self.fault_code)


# Exception class by wire type name.
FAULTS: dict[str, type[XMLVendError]] = {}


# ------------------------------------------------------------------ protocol
class XMLVendFaultEx(XMLVendError):
    "The request breaks the XMLVend protocol"

    soap_code = "Client"


class XMLVendSchemaEx(XMLVendFaultEx):
    "The request does not conform to the schema"


class UseCaseSupportEx(XMLVendFaultEx):
    "This server does not offer the requested use case"


class ClientIDSSLEx(XMLVendFaultEx):
    "The clientID does not match the client's TLS certificate"


class ConfirmationEx(XMLVendFaultEx):
    "No transaction with that msgID to confirm"


class ReversalEx(XMLVendFaultEx):
    "No transaction with that msgID to reverse"


class LastResponseEx(XMLVendFaultEx):
    "No response for that msgID: the client may safely send a new request"


class DuplicateMsgID(XMLVendFaultEx):
    """The msgID was already used by this client for a different request.

    Sent as a plain ``XMLVendFaultEx``: the only named type for it is an
    Eskom extension (``DuplicateMsgIDEx``) that standard clients cannot read.
    A repeat of the same request is not a fault: it gets the stored answer.
    """

    wire_type = "XMLVendFaultEx"


# ------------------------------------------------------------ business rules
class BusinessRuleEx(XMLVendError):
    "The request is well formed but a business rule refuses it"


class VendorCreditEx(BusinessRuleEx):
    "The vendor's credit (float) does not cover the sale"


class ClientIDAuthorisationEx(BusinessRuleEx):
    "The client is blocked"


class RequestAuthorisationEx(BusinessRuleEx):
    "The vendor or operator may not do this"


class SGCAuthorisationEx(BusinessRuleEx):
    "The vendor may not sell for meters of this supply group"


class UnknownMeterEx(BusinessRuleEx):
    "The meter is not known to the server"


class BlockedMeterEx(BusinessRuleEx):
    "The meter is blocked"


class MSNOCheckDigitEx(BusinessRuleEx):
    "The meter number's check digit is wrong"


class STSDataEx(BusinessRuleEx):
    "The meter's STS data (SGC, KRN, TI, AT, TT) are not valid"


class InsufficientMeterDataEx(BusinessRuleEx):
    "More meter data are needed"


class RequireMeterCardEx(BusinessRuleEx):
    "The request must carry the meter card's data"


class ConfirmCustomerEx(BusinessRuleEx):
    "No such customer"


class LatestKRNEx(BusinessRuleEx):
    "The meter's key revision has expired: update the meter key first"


class UpdateMtrKeySameEx(BusinessRuleEx):
    "The meter key is already the one asked for"


class UnknownMeterUpdateMtrKeyEx(BusinessRuleEx):
    "The meter to update the key of is not known"


class CancelEx(BusinessRuleEx):
    "The transaction cannot be cancelled"


class ReprintEx(BusinessRuleEx):
    "Nothing to reprint"


class VerifyTokenEx(BusinessRuleEx):
    "The token cannot be verified"


class FBEEx(BusinessRuleEx):
    "No free basic electricity for this customer (now)"


class DebtEx(BusinessRuleEx):
    "No debt to pay"


class ServiceChrgEx(BusinessRuleEx):
    "No service charge to pay"


class StartBatchEx(BusinessRuleEx):
    "The batch cannot be opened"


class EndBatchEx(BusinessRuleEx):
    "The batch cannot be closed"


class CheckBatchTotalEx(BusinessRuleEx):
    "The batch total cannot be checked"


class ReprintEndBatchEx(BusinessRuleEx):
    "No closed batch to reprint"


class ReprintDepositSlipEx(BusinessRuleEx):
    "No deposit slip to reprint"


# -------------------------------------------------------------------- system
class SystemEx(XMLVendError):
    "The server failed; the client may try again"


__all__ = [
    "FAULTS",
    "Fault",
    "XMLVendError",
    "XMLVendFaultResp",
    *FAULTS,
    "DuplicateMsgID",
]
