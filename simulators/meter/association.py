"""Server side of one DLMS/COSEM association (sans-io): APDU in, APDU out.

:class:`Meter` holds what outlives a connection (state, objects, invocation
counters); :class:`Session` holds one association (client SAP, security,
pending block transfers).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from . import acse, security, xdlms
from .axdr import (
    AxdrError,
    Data,
    array,
    decode_all,
    encode,
    encode_length,
    enum,
    i8,
    null,
    octets,
    struct_,
    u8,
    u16,
)
from .cosem import ASSOCIATION, build_objects
from .model import Clock, MeterConfig, MeterState, utc_now
from .xdlms import (
    OBJECT_CLASS_INCONSISTENT,
    OBJECT_UNDEFINED,
    READ_WRITE_DENIED,
    SUCCESS,
)

SAP_PUBLIC = 16
SAP_LLS = 32
SAP_MANAGEMENT = 1

# Ciphered APDU overhead (general-glo worst case) kept free when sizing blocks.
_CIPHER_OVERHEAD = 32
_BLOCK_HEADER = 13


class Meter:
    """One simulated meter: its state, objects and security counters."""

    def __init__(self, config: MeterConfig, clock: Clock = utc_now) -> None:
        self.config = config
        self.state = MeterState(config, clock)
        self.objects = build_objects(self.state)
        # Invocation counter for the meter's own ciphered APDUs: monotonic for
        # the meter's lifetime so a GCM nonce is never reused.
        self._server_ic = 0
        # Last accepted client invocation counter per client system title.
        self.client_ic: dict[bytes, int] = {}

    def next_ic(self) -> int:
        self._server_ic += 1
        return self._server_ic

    @property
    def server_ic(self) -> int:
        return self._server_ic


@dataclass
class _PendingGet:
    invoke_id: int
    data: bytes
    block_size: int
    sent: int = 0  # last block number sent


@dataclass
class _PendingBlocks:
    invoke_id: int
    target: object  # AttributeRef or MethodRef
    buffer: bytearray
    block_number: int


class Session:
    """One association between a client SAP and the meter's logical device 1."""

    def __init__(self, meter: Meter, client_sap: int) -> None:
        self.meter = meter
        self.client_sap = client_sap
        self.associated = False
        self.hls_pending = False
        self.mechanism = acse.MECH_NONE
        self.ciphered = False
        self.client_title: bytes | None = None
        self.conformance = 0
        self.send_limit = meter.config.server_max_pdu
        self._stoc = b""
        self._ctos = b""
        self._pending_get: _PendingGet | None = None
        self._pending_set: _PendingBlocks | None = None
        self._pending_action: _PendingBlocks | None = None

    @property
    def config(self) -> MeterConfig:
        return self.meter.config

    # --- entry point ----------------------------------------------------------

    def handle(self, apdu: bytes) -> bytes:
        """Answer one complete request APDU."""
        if not apdu:
            return xdlms.exception_response(
                xdlms.STATE_SERVICE_UNKNOWN, xdlms.SERVICE_NOT_SUPPORTED
            )
        tag = apdu[0]
        if tag == acse.AARQ:
            return self._aarq(apdu)
        if tag == acse.RLRQ:
            return self._rlrq(apdu)
        if tag == security.GENERAL_GLO or tag in security.SERVICE_SPECIFIC_REQUESTS:
            return self._ciphered(apdu)
        if tag in (xdlms.GET_REQUEST, xdlms.SET_REQUEST, xdlms.ACTION_REQUEST):
            if self.ciphered:
                # Security policy: a ciphered association accepts only
                # protected requests.
                return xdlms.exception_response(
                    xdlms.STATE_SERVICE_NOT_ALLOWED,
                    xdlms.SERVICE_OPERATION_NOT_POSSIBLE,
                )
            return self._service(apdu)
        return xdlms.exception_response(
            xdlms.STATE_SERVICE_UNKNOWN, xdlms.SERVICE_NOT_SUPPORTED
        )

    def release(self) -> None:
        self.associated = False
        self.hls_pending = False
        self.ciphered = False
        self._pending_get = self._pending_set = self._pending_action = None

    # --- ACSE -----------------------------------------------------------------

    def _reject(
        self, context: int, diagnostic: int, user: bytes | None = None
    ) -> bytes:
        self.release()
        return acse.build_aare(
            context=context,
            result=acse.RESULT_REJECTED_PERMANENT,
            diagnostic=diagnostic,
            user_information=user,
        )

    def _aarq(self, apdu: bytes) -> bytes:
        self.release()
        try:
            aarq = acse.parse_aarq(apdu)
        except (acse.AcseError, IndexError, ValueError):
            return self._reject(acse.CONTEXT_LN, acse.DIAG_NO_REASON)
        ctx = aarq.context
        if ctx not in (acse.CONTEXT_LN, acse.CONTEXT_LN_CIPHERED):
            return self._reject(acse.CONTEXT_LN, acse.DIAG_CONTEXT_NOT_SUPPORTED)
        diag = self._check_authentication(aarq)
        if diag:
            return self._reject(ctx, diag)
        ciphered = ctx == acse.CONTEXT_LN_CIPHERED
        if aarq.user_information is None:
            return self._reject(ctx, acse.DIAG_NO_REASON)
        initiate = aarq.user_information
        if ciphered:
            title = aarq.calling_ap_title
            if not title or len(title) != 8:
                return self._reject(ctx, acse.DIAG_AUTHENTICATION_REQUIRED)
            try:
                if initiate[0] != security.GLO_INITIATE_REQUEST:
                    raise security.CipherError("InitiateRequest must be ciphered")
                _, _, sc, ic, ct = security.parse_glo(initiate)
                initiate = self._decrypt(title, sc, ic, ct)
            except (security.CipherError, IndexError, AxdrError):
                # Wrong EK/AK or tampered AARQ: the client did not prove it
                # holds the keys.
                return self._reject(ctx, acse.DIAG_AUTHENTICATION_FAILURE)
            self.client_title = title
        try:
            req = acse.parse_initiate_request(initiate)
        except acse.AcseError:
            return self._reject(ctx, acse.DIAG_NO_REASON)
        if req.dlms_version < 6 or req.max_pdu_size and req.max_pdu_size < 64:
            reason = 1 if req.dlms_version < 6 else 3  # too-low / pdu-too-short
            return self._reject(
                ctx,
                acse.DIAG_NO_REASON,
                acse.build_confirmed_service_error_initiate(reason),
            )
        self.conformance = req.conformance & acse.SERVER_CONFORMANCE
        client_max = req.max_pdu_size or 0xFFFF
        self.send_limit = min(client_max, self.config.server_max_pdu)
        response = acse.build_initiate_response(
            self.conformance, self.config.server_max_pdu
        )
        if ciphered:
            ic = self.meter.next_ic()
            ct = security.encrypt(
                security.SC_AUTH_ENC,
                self.config.system_title,
                ic,
                self.config.block_cipher_key,
                self.config.authentication_key,
                response,
            )
            response = security.build_glo(
                security.GLO_INITIATE_RESPONSE, security.SC_AUTH_ENC, ic, ct
            )
        self.mechanism = aarq.mechanism
        self.ciphered = ciphered
        hls = aarq.mechanism in (acse.MECH_HLS_MD5, acse.MECH_HLS_GMAC)
        if hls:
            self._ctos = aarq.auth_value or b""
            self._stoc = secrets.token_bytes(16)
            self.hls_pending = True
        else:
            self.associated = True
        return acse.build_aare(
            context=ctx,
            result=acse.RESULT_ACCEPTED,
            diagnostic=acse.DIAG_NULL,
            mechanism=aarq.mechanism,
            responding_ap_title=self.config.system_title,
            auth_value=self._stoc if hls else None,
            user_information=response,
        )

    def _check_authentication(self, aarq: acse.Aarq) -> int:
        """Return 0 if the client SAP may associate with this mechanism."""
        sap, mech = self.client_sap, aarq.mechanism
        if sap == SAP_PUBLIC:
            if aarq.context != acse.CONTEXT_LN:
                return acse.DIAG_CONTEXT_NOT_SUPPORTED
            return 0 if mech == acse.MECH_NONE else acse.DIAG_MECHANISM_NOT_RECOGNISED
        if sap == SAP_LLS:
            if mech == acse.MECH_NONE:
                return acse.DIAG_AUTHENTICATION_REQUIRED
            if mech != acse.MECH_LLS:
                return acse.DIAG_MECHANISM_NOT_RECOGNISED
            ok = hmac.compare_digest(aarq.auth_value or b"", self.config.lls_password)
            return 0 if ok else acse.DIAG_AUTHENTICATION_FAILURE
        if sap == SAP_MANAGEMENT:
            if mech == acse.MECH_NONE:
                return acse.DIAG_AUTHENTICATION_REQUIRED
            if mech == acse.MECH_HLS_MD5:
                return 0
            if mech == acse.MECH_HLS_GMAC:
                if aarq.context != acse.CONTEXT_LN_CIPHERED:
                    return acse.DIAG_CONTEXT_NOT_SUPPORTED
                return 0
            return acse.DIAG_MECHANISM_NOT_RECOGNISED
        return acse.DIAG_NO_REASON

    def _rlrq(self, apdu: bytes) -> bytes:
        user = None
        if self.ciphered and self.associated:
            # Answer a ciphered RLRQ with a ciphered InitiateResponse, as the
            # Green Book does for protected releases.
            response = acse.build_initiate_response(
                self.conformance, self.config.server_max_pdu
            )
            ic = self.meter.next_ic()
            ct = self._encrypt(ic, response)
            user = security.build_glo(
                security.GLO_INITIATE_RESPONSE, security.SC_AUTH_ENC, ic, ct
            )
        self.release()
        return acse.build_rlre(0, user)

    # --- ciphering --------------------------------------------------------------

    def _decrypt(self, title: bytes, sc: int, ic: int, ct: bytes) -> bytes:
        last = self.meter.client_ic.get(title, -1)
        if ic <= last:
            raise security.CipherError(f"replayed invocation counter {ic}")
        plain = security.decrypt(
            sc,
            title,
            ic,
            self.config.block_cipher_key,
            self.config.authentication_key,
            ct,
        )
        self.meter.client_ic[title] = ic
        return plain

    def _encrypt(self, ic: int, plain: bytes) -> bytes:
        return security.encrypt(
            security.SC_AUTH_ENC,
            self.config.system_title,
            ic,
            self.config.block_cipher_key,
            self.config.authentication_key,
            plain,
        )

    def _ciphered(self, apdu: bytes) -> bytes:
        if not (self.associated or self.hls_pending) or not self.ciphered:
            return xdlms.exception_response(
                xdlms.STATE_SERVICE_NOT_ALLOWED, xdlms.SERVICE_OPERATION_NOT_POSSIBLE
            )
        try:
            tag, title, sc, ic, ct = security.parse_glo(apdu)
            if title is not None and title != self.client_title:
                raise security.CipherError("system title differs from the AARQ's")
            last = self.meter.client_ic.get(self.client_title or b"", -1)
            if ic <= last:
                return xdlms.exception_response(
                    xdlms.STATE_SERVICE_NOT_ALLOWED,
                    xdlms.SERVICE_INVOCATION_COUNTER_ERROR,
                )
            plain = self._decrypt(self.client_title or b"", sc, ic, ct)
        except (security.CipherError, AxdrError, IndexError):
            return xdlms.exception_response(
                xdlms.STATE_SERVICE_NOT_ALLOWED, xdlms.SERVICE_DECIPHERING_ERROR
            )
        response = self._service(plain)
        if response[0] == xdlms.EXCEPTION_RESPONSE:
            return response
        out_ic = self.meter.next_ic()
        out_ct = self._encrypt(out_ic, response)
        if tag == security.GENERAL_GLO:
            return security.build_glo(
                security.GENERAL_GLO,
                security.SC_AUTH_ENC,
                out_ic,
                out_ct,
                self.config.system_title,
            )
        return security.build_glo(
            security.GLO_FOR_PLAIN[response[0]], security.SC_AUTH_ENC, out_ic, out_ct
        )

    # --- xDLMS services -----------------------------------------------------------

    def _service(self, apdu: bytes) -> bytes:
        if not (self.associated or self.hls_pending):
            return xdlms.exception_response(
                xdlms.STATE_SERVICE_NOT_ALLOWED, xdlms.SERVICE_OPERATION_NOT_POSSIBLE
            )
        try:
            req = xdlms.parse_request(apdu)
        except xdlms.XdlmsError:
            return xdlms.exception_response(
                xdlms.STATE_SERVICE_UNKNOWN, xdlms.SERVICE_OTHER_REASON
            )
        if self.hls_pending and not self._is_hls_reply(req):
            return xdlms.exception_response(
                xdlms.STATE_SERVICE_NOT_ALLOWED, xdlms.SERVICE_OPERATION_NOT_POSSIBLE
            )
        if req.service == xdlms.GET_REQUEST:
            return self._get(req)
        if req.service == xdlms.SET_REQUEST:
            return self._set(req)
        return self._action(req)

    @property
    def _block_size(self) -> int:
        overhead = _BLOCK_HEADER + (_CIPHER_OVERHEAD if self.ciphered else 0)
        return max(16, self.send_limit - overhead)

    def _fits(self, response_len: int) -> bool:
        extra = _CIPHER_OVERHEAD if self.ciphered else 0
        return response_len + extra <= self.send_limit

    def _get(self, req: xdlms.Request) -> bytes:
        iid = req.invoke_id
        if req.kind == 2:
            return self._get_next(req)
        self._pending_get = None
        if req.kind == 1:
            result = self._read(req.attributes[0])
            if isinstance(result, int):
                return xdlms.get_response_normal(iid, result)
            encoded = encode(result)
            response = xdlms.get_response_normal_raw(iid, encoded)
            if self._fits(len(response)):
                return response
            return self._start_block_get(iid, encoded)
        results = []
        for ref in req.attributes:
            result = self._read(ref)
            results.append(xdlms.get_data_result(result))
        response = xdlms.get_response_list(iid, results)
        if self._fits(len(response)):
            return response
        return self._start_block_get(
            iid, encode_length(len(results)) + b"".join(results)
        )

    def _start_block_get(self, iid: int, data: bytes) -> bytes:
        if not self.conformance & acse.CONF_BLOCK_GET:
            return xdlms.get_response_normal(iid, xdlms.OTHER_REASON)
        pending = _PendingGet(iid, data, self._block_size)
        self._pending_get = pending
        return self._next_block(pending)

    def _next_block(self, pending: _PendingGet) -> bytes:
        start = pending.sent * pending.block_size
        chunk = pending.data[start : start + pending.block_size]
        pending.sent += 1
        last = start + pending.block_size >= len(pending.data)
        if last:
            self._pending_get = None
        return xdlms.get_response_block(pending.invoke_id, last, pending.sent, chunk)

    def _get_next(self, req: xdlms.Request) -> bytes:
        pending = self._pending_get
        if pending is None:
            return xdlms.get_response_block(
                req.invoke_id,
                True,
                req.block_number,
                None,
                xdlms.NO_LONG_GET_IN_PROGRESS,
            )
        if req.block_number != pending.sent:
            self._pending_get = None
            return xdlms.get_response_block(
                req.invoke_id,
                True,
                req.block_number,
                None,
                xdlms.DATA_BLOCK_NUMBER_INVALID,
            )
        return self._next_block(pending)

    def _lookup(self, class_id: int, ln: bytes):
        if ln == ASSOCIATION:
            return None if class_id == 15 else OBJECT_CLASS_INCONSISTENT
        obj = self.meter.objects.get(ln)
        if obj is None:
            return OBJECT_UNDEFINED
        if obj.class_id != class_id:
            return OBJECT_CLASS_INCONSISTENT
        return obj

    def _read(self, ref: xdlms.AttributeRef) -> Data | int:
        obj = self._lookup(ref.class_id, ref.ln)
        if isinstance(obj, int):
            return obj
        if obj is None:
            return self._association_attribute(ref.attribute)
        return obj.get(ref.attribute, ref.selector, ref.parameters)

    def _set(self, req: xdlms.Request) -> bytes:
        iid = req.invoke_id
        if req.kind == 1:
            return xdlms.set_response_normal(
                iid, self._write(req.attributes[0], req.values[0])
            )
        if req.kind == 4:
            results = [self._write(r, v) for r, v in zip(req.attributes, req.values)]
            return xdlms.set_response_list(iid, results)
        # Block transfer: kind 2 (first block) or 3 (next block).
        if req.kind == 2:
            self._pending_set = _PendingBlocks(iid, req.attributes[0], bytearray(), 0)
        pending = self._pending_set
        if pending is None or req.block_number != pending.block_number + 1:
            self._pending_set = None
            code = (
                xdlms.NO_LONG_SET_IN_PROGRESS
                if pending is None
                else xdlms.DATA_BLOCK_NUMBER_INVALID
            )
            return xdlms.set_response_last_block(iid, code, req.block_number)
        pending.buffer += req.raw_block
        pending.block_number = req.block_number
        if not req.last_block:
            return xdlms.set_response_block_ack(iid, req.block_number)
        self._pending_set = None
        try:
            value = decode_all(bytes(pending.buffer))
        except AxdrError:
            return xdlms.set_response_last_block(
                iid, xdlms.TYPE_UNMATCHED, req.block_number
            )
        result = self._write(pending.target, value)  # type: ignore[arg-type]
        return xdlms.set_response_last_block(iid, result, req.block_number)

    def _write(self, ref: xdlms.AttributeRef, value: Data | None) -> int:
        if self.client_sap == SAP_PUBLIC or value is None:
            return READ_WRITE_DENIED
        obj = self._lookup(ref.class_id, ref.ln)
        if isinstance(obj, int):
            return obj
        if obj is None:
            return READ_WRITE_DENIED
        return obj.set(ref.attribute, value)

    def _is_hls_reply(self, req: xdlms.Request) -> bool:
        m = req.method
        return (
            req.service == xdlms.ACTION_REQUEST
            and req.kind == 1
            and m is not None
            and m.class_id == 15
            and m.ln == ASSOCIATION
            and m.method == 1
        )

    def _action(self, req: xdlms.Request) -> bytes:
        iid = req.invoke_id
        if self._is_hls_reply(req):
            return self._hls_reply(iid, req.values[0])
        if req.kind in (4, 6):
            if req.kind == 4:
                self._pending_action = _PendingBlocks(iid, req.method, bytearray(), 0)
            pending = self._pending_action
            if pending is None or req.block_number != pending.block_number + 1:
                self._pending_action = None
                return xdlms.action_response_normal(iid, xdlms.LONG_GET_ABORTED)
            pending.buffer += req.raw_block
            pending.block_number = req.block_number
            if not req.last_block:
                return xdlms.action_response_next_pblock(iid, req.block_number)
            self._pending_action = None
            try:
                param: Data | None = decode_all(bytes(pending.buffer))
            except AxdrError:
                return xdlms.action_response_normal(iid, xdlms.TYPE_UNMATCHED)
            return self._invoke(iid, pending.target, param)  # type: ignore[arg-type]
        return self._invoke(iid, req.method, req.values[0])  # type: ignore[arg-type]

    def _invoke(self, iid: int, ref: xdlms.MethodRef, param: Data | None) -> bytes:
        if self.client_sap != SAP_MANAGEMENT:
            return xdlms.action_response_normal(iid, READ_WRITE_DENIED)
        obj = self._lookup(ref.class_id, ref.ln)
        if isinstance(obj, int):
            return xdlms.action_response_normal(iid, obj)
        if obj is None:
            return xdlms.action_response_normal(iid, READ_WRITE_DENIED)
        result, data = obj.action(ref.method, param)
        return xdlms.action_response_normal(iid, result, data)

    def _hls_reply(self, iid: int, param: Data | None) -> bytes:
        if not self.hls_pending or param is None or not isinstance(param.value, bytes):
            return xdlms.action_response_normal(iid, READ_WRITE_DENIED)
        reply = param.value
        cfg = self.config
        ok = False
        answer = b""
        if self.mechanism == acse.MECH_HLS_MD5:
            expected = security.hls_md5_response(self._stoc, cfg.hls_secret)
            ok = hmac.compare_digest(reply, expected)
            answer = security.hls_md5_response(self._ctos, cfg.hls_secret)
        elif (
            self.mechanism == acse.MECH_HLS_GMAC
            and len(reply) == 17
            and (self.client_title)
        ):
            ic = int.from_bytes(reply[1:5], "big")
            expected = security.hls_gmac_response(
                self.client_title,
                ic,
                cfg.block_cipher_key,
                cfg.authentication_key,
                self._stoc,
            )
            ok = hmac.compare_digest(reply, expected)
            if ok:
                answer = security.hls_gmac_response(
                    cfg.system_title,
                    self.meter.next_ic(),
                    cfg.block_cipher_key,
                    cfg.authentication_key,
                    self._ctos,
                )
        self.hls_pending = False
        if not ok:
            self.release()
            return xdlms.action_response_normal(iid, READ_WRITE_DENIED)
        self.associated = True
        return xdlms.action_response_normal(iid, SUCCESS, octets(answer))

    # --- association LN object (class 15) ------------------------------------

    def _association_attribute(self, attr: int) -> Data | int:
        if attr == 1:
            return octets(ASSOCIATION)
        if attr == 2:
            return self._object_list()
        if attr == 3:
            return struct_(i8(self.client_sap), u16(1))
        if attr == 4:
            ctx = acse.CONTEXT_LN_CIPHERED if self.ciphered else acse.CONTEXT_LN
            return octets(bytes.fromhex("608574050801") + bytes([ctx]))
        if attr == 5:
            return struct_(
                Data(4, format(self.conformance, "024b")),
                u16(self.config.server_max_pdu),
                u16(self.config.server_max_pdu),
                u8(6),
                i8(0),
                octets(b""),
            )
        if attr == 6:
            return octets(bytes.fromhex("608574050802") + bytes([self.mechanism]))
        if attr == 7:
            return READ_WRITE_DENIED
        if attr == 8:
            return enum(2 if self.associated else 1)
        if attr == 9:
            return octets(bytes.fromhex("00002B0000FF"))
        return xdlms.OBJECT_UNAVAILABLE

    def _object_list(self) -> Data:
        write = self.client_sap != SAP_PUBLIC
        act = self.client_sap == SAP_MANAGEMENT
        entries = [
            struct_(
                u16(15),
                u8(1),
                octets(ASSOCIATION),
                struct_(
                    array([_attr_access(a, 1) for a in range(1, 10)]),
                    array([_method_access(m, act) for m in range(1, 5)]),
                ),
            )
        ]
        for obj in self.meter.objects.values():
            attrs = [
                _attr_access(a, 3 if write and a in obj.writable else 1)
                for a in range(1, obj.attribute_count + 1)
            ]
            methods = [_method_access(m, act) for m in range(1, obj.method_count + 1)]
            entries.append(
                struct_(
                    u16(obj.class_id),
                    u8(obj.version),
                    octets(obj.ln),
                    struct_(array(attrs), array(methods)),
                )
            )
        return array(entries)


def _attr_access(attr: int, mode: int) -> Data:
    return struct_(i8(attr), enum(mode), null())


def _method_access(method: int, allowed: bool) -> Data:
    return struct_(i8(method), enum(1 if allowed else 0))
