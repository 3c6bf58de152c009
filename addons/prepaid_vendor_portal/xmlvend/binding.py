"""Typed XML binding: frozen dataclasses to lxml elements and back.

Every XMLVend type is a frozen, keyword-only dataclass declared with
:func:`xml_type` (its schema namespace and type name) whose fields say, with
:func:`attr` or :func:`elem`, how they appear in XML.  The Python type hints
carry the rest: ``X | None`` may be absent, ``tuple[X, ...]`` repeats,
``Annotated[str, SIMPLE_TYPE]`` names a restricted simple type, and a field
whose type is another XMLVend type is a child element, polymorphic through
``xsi:type`` when that type has registered subtypes.

As in the standard's schemas (``elementFormDefault="qualified"``), a child
element is in the namespace of the type that declares it, so a credit vend
request's ``clientID`` is in the base namespace and its ``purchaseValue`` in
the revenue one.  Fields are written in declaration order, base type first,
which is the order of the standard's sequences.

Reading is deliberately lenient where real clients differ and strict where a
value matters (docs/xmlvend.md section 5):

- children are matched by local name, in any order, in any of the three
  XMLVend namespaces or none; children in other namespaces and unknown
  children are ignored (vendor extensions);
- ``xsi:type`` is resolved through the in-scope prefixes; an unprefixed value
  is looked up by local name (type names are unique across the three
  namespaces); without ``xsi:type``, an abstract type is inferred from the
  content when only one subtype fits;
- scalar text and attribute values are stripped of surrounding whitespace
  (except passwords), so ``<dispHeader> </dispHeader>`` is an empty string;
- every scalar is checked against its simple type; a missing required field,
  a repeated single field or text inside an element-only type is an error.

Errors are :class:`BindingError` (a ``ValueError``) with the element path.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from lxml import etree

from . import values
from .namespaces import PREFIXES, XMLVEND, XSI, XSI_TYPE, split
from .values import SimpleType

XSI_NIL = f"{{{XSI}}}nil"
NSMAP = {prefix: ns for ns, prefix in PREFIXES.items()} | {"xsi": XSI}
SCALARS = (str, int, bool, Decimal, datetime)

T = TypeVar("T")

# Every XMLVend type by its XSD type name (unique across the three namespaces).
REGISTRY: dict[str, type] = {}


class BindingError(ValueError):
    "An element or value does not fit its type; ``path`` says where"

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class _Xml:
    local: str
    is_attr: bool
    secret: bool = False


def attr(local: str, default: Any = MISSING, *, secret: bool = False) -> Any:
    """A field written as the XML attribute ``local``; a secret one (a card
    number) is left out of the object's repr, so logging a request leaks none,
    and is masked in the dispute log (:mod:`.redaction`)"""
    xml = _Xml(local, True, secret)
    return field(default=default, repr=not secret, metadata={"xml": xml})


def elem(local: str, default: Any = MISSING, *, secret: bool = False) -> Any:
    "A field written as the child element ``local`` (``secret``: see attr)"
    xml = _Xml(local, False, secret)
    return field(default=default, repr=not secret, metadata={"xml": xml})


def xml_type(ns: str, *, abstract: bool = False, name: str | None = None):
    """Make ``cls`` a frozen keyword-only dataclass bound to the XSD type
    ``name`` (default: the class name) of namespace ``ns``.

    An abstract type is never written without ``xsi:type`` naming a subtype.
    """

    def wrap(cls: type[T]) -> type[T]:
        cls = dataclass(frozen=True, kw_only=True)(cls)
        type_name = name or cls.__name__
        if type_name in REGISTRY:
            raise TypeError(f"XML type {type_name} declared twice")
        cls.__xml_ns__ = ns
        cls.__xml_name__ = type_name
        cls.__xml_abstract__ = abstract
        REGISTRY[type_name] = cls
        return cls

    return wrap


def is_xml_type(cls: Any) -> bool:
    return isinstance(cls, type) and "__xml_name__" in cls.__dict__


def xml_base(cls: type) -> type | None:
    "The XMLVend type that ``cls`` extends, if any"
    for base in cls.__bases__:
        if is_xml_type(base):
            return base
    return None


def subtypes(cls: type) -> list[type]:
    "Registered types derived from ``cls`` (itself included), by name"
    return sorted(
        (c for c in REGISTRY.values() if issubclass(c, cls)),
        key=lambda c: c.__xml_name__,
    )


# ---------------------------------------------------------------- type plans
@dataclass(frozen=True)
class FieldPlan:
    "How one dataclass field maps to XML"

    name: str
    local: str
    ns: str
    is_attr: bool
    py_type: type
    simple: SimpleType | None
    repeated: bool
    optional: bool
    required: bool
    is_complex: bool
    tag: str  # "{ns}local" of an element field
    secret: bool = False  # masked in logs (attr(..., secret=True))


@dataclass(frozen=True)
class TypePlan:
    cls: type
    attrs: tuple[FieldPlan, ...]
    elems: tuple[FieldPlan, ...]
    by_local: dict[str, FieldPlan]
    attr_by_local: dict[str, FieldPlan]


_PLANS: dict[type, TypePlan] = {}


def _unwrap(hint: Any) -> tuple[type, SimpleType | None, bool, bool]:
    "(type, simple type, repeated, optional) of a field's type hint"
    simple = None
    repeated = optional = False
    while True:
        origin = typing.get_origin(hint)
        if origin is typing.Annotated:
            hint, *meta = typing.get_args(hint)
            simple = next((m for m in meta if isinstance(m, SimpleType)), simple)
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            if len(args) != 1:
                raise TypeError(f"unsupported union {hint}")
            optional = True
            hint = args[0]
        elif origin is tuple:
            args = typing.get_args(hint)
            if len(args) != 2 or args[1] is not Ellipsis:
                raise TypeError(f"use tuple[X, ...] for repeated fields, not {hint}")
            repeated = True
            hint = args[0]
        else:
            return hint, simple, repeated, optional


def _declaring_ns(cls: type, name: str) -> str:
    for klass in reversed(cls.__mro__):
        if "__xml_ns__" in klass.__dict__ and name in klass.__dict__.get(
            "__annotations__", {}
        ):
            return klass.__xml_ns__
    raise TypeError(f"{cls.__name__}.{name} is not declared by an XML type")


def plan_of(cls: type) -> TypePlan:
    plan = _PLANS.get(cls)
    if plan is not None:
        return plan
    hints = typing.get_type_hints(cls, include_extras=True)
    attrs, elems = [], []
    for f in fields(cls):
        xml = f.metadata.get("xml")
        if xml is None:
            raise TypeError(f"{cls.__name__}.{f.name} has no attr()/elem()")
        py_type, simple, repeated, optional = _unwrap(hints[f.name])
        if not (py_type in SCALARS or is_xml_type(py_type)):
            raise TypeError(f"{cls.__name__}.{f.name}: unsupported type {py_type}")
        required = f.default is MISSING and f.default_factory is MISSING
        fp = FieldPlan(
            name=f.name,
            local=xml.local,
            ns=_declaring_ns(cls, f.name),
            is_attr=xml.is_attr,
            py_type=py_type,
            simple=simple,
            repeated=repeated,
            optional=optional or repeated or not required,
            required=required and not repeated,
            is_complex=is_xml_type(py_type),
            tag=f"{{{_declaring_ns(cls, f.name)}}}{xml.local}",
            secret=xml.secret,
        )
        if fp.is_attr and (fp.repeated or fp.is_complex):
            raise TypeError(f"{cls.__name__}.{f.name}: an attribute must be scalar")
        (attrs if fp.is_attr else elems).append(fp)
    plan = TypePlan(
        cls,
        tuple(attrs),
        tuple(elems),
        {fp.local: fp for fp in elems},
        {fp.local: fp for fp in attrs},
    )
    _PLANS[cls] = plan
    return plan


# -------------------------------------------------------------------- scalars
def parse_scalar(fp: FieldPlan, text: str) -> Any:
    if fp.simple is None or not fp.simple.keep_space:
        text = text.strip()
    if fp.simple is not None:
        fp.simple.check(text)
    kind = fp.py_type
    if kind is str:
        return text
    if kind is Decimal:
        return values.parse_decimal(text)
    if kind is bool:
        return values.parse_bool(text)
    if kind is int:
        return values.parse_int(text)
    return values.parse_datetime(text)


def format_scalar(fp: FieldPlan, value: Any) -> str:
    kind = fp.py_type
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(f"{fp.name}: expected str, got {type(value).__name__}")
        text = value
    elif kind is Decimal:
        if not isinstance(value, Decimal | int) or isinstance(value, bool):
            raise TypeError(f"{fp.name}: expected Decimal, got {type(value).__name__}")
        text = values.format_decimal(value)
    elif kind is bool:
        text = values.format_bool(bool(value))
    elif kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{fp.name}: expected int, got {type(value).__name__}")
        text = str(value)
    else:
        text = values.format_datetime(value)
    if fp.simple is not None:
        try:
            fp.simple.check(text)
        except ValueError as error:
            raise ValueError(f"{fp.name}: {error}") from None
    return text


# -------------------------------------------------------------------- reading
def _resolve_xsi_type(node: etree._Element, declared: type, path: str) -> type | None:
    raw = node.get(XSI_TYPE)
    if raw is None:
        return None
    raw = raw.strip()
    prefix, _, local = raw.rpartition(":")
    if prefix:
        ns = node.nsmap.get(prefix)
        if ns is None:
            raise BindingError(path, f"xsi:type prefix {prefix!r} is not declared")
        if ns not in XMLVEND:
            raise BindingError(path, f"xsi:type {raw!r} is not an XMLVend type")
    cls = REGISTRY.get(local)
    if cls is None or not issubclass(cls, declared):
        raise BindingError(
            path, f"xsi:type {raw!r} is not a kind of {declared.__xml_name__}"
        )
    return cls


def _present(node: etree._Element) -> tuple[set[str], set[str]]:
    "Local names of the XMLVend-namespace children and of the attributes"
    children = set()
    for child in node:
        if isinstance(child.tag, str):
            ns, local = split(child.tag)
            if ns is None or ns in XMLVEND:
                children.add(local)
    attributes = {name for name in node.attrib if name[:1] != "{"}
    return children, attributes


def _infer(node: etree._Element, declared: type, path: str) -> type:
    "The one concrete subtype of an abstract type that fits the content"
    children, attributes = _present(node)
    candidates = []
    for cls in subtypes(declared):
        if cls.__xml_abstract__:
            continue
        plan = plan_of(cls)
        if any(fp.required and fp.local not in attributes for fp in plan.attrs):
            continue
        if any(fp.required and fp.local not in children for fp in plan.elems):
            continue
        if not children <= plan.by_local.keys():
            continue
        score = len(children & plan.by_local.keys()) + len(
            attributes & plan.attr_by_local.keys()
        )
        candidates.append((score, cls))
    default = declared.__dict__.get("__xml_default__")
    if default is not None and any(cls is default for _, cls in candidates):
        return default
    if candidates:
        best = max(score for score, _ in candidates)
        top = [cls for score, cls in candidates if score == best]
        if len(top) == 1:
            return top[0]
    names = ", ".join(
        c.__xml_name__ for c in subtypes(declared) if not c.__xml_abstract__
    )
    raise BindingError(path, f"xsi:type is needed, one of: {names}")


def read(node: etree._Element, declared: type[T], path: str = "") -> T:
    "The object of (a subtype of) ``declared`` that ``node`` holds"
    path = path or split(node.tag)[1]
    cls = _resolve_xsi_type(node, declared, path)
    if cls is None:
        cls = _infer(node, declared, path) if declared.__xml_abstract__ else declared
    elif cls.__xml_abstract__:
        raise BindingError(path, f"xsi:type {cls.__xml_name__} is abstract")
    return read_fields(node, cls, path)


def read_fields(
    node: etree._Element, cls: type[T], path: str, *, text: bool = True
) -> T:
    """Read ``node`` as exactly ``cls``, ignoring what ``cls`` does not declare
    (and stray text too when ``text`` is false: to salvage a header)"""
    plan = plan_of(cls)
    kwargs: dict[str, Any] = {}
    for fp in plan.attrs:
        raw = node.get(fp.local)
        if raw is None:
            if fp.required:
                raise BindingError(path, f"attribute {fp.local!r} is missing")
            continue
        try:
            kwargs[fp.name] = parse_scalar(fp, raw)
        except ValueError as error:
            raise BindingError(f"{path}/@{fp.local}", str(error)) from None
    if text and node.text and node.text.strip():
        raise BindingError(path, "text is not allowed here")
    repeated: dict[str, list[Any]] = {}
    for child in node:
        if text and child.tail and child.tail.strip():
            raise BindingError(path, "text is not allowed here")
        if not isinstance(child.tag, str):
            continue
        ns, local = split(child.tag)
        fp = plan.by_local.get(local)
        if fp is None or (ns is not None and ns not in XMLVEND):
            continue
        child_path = f"{path}/{local}"
        if child.get(XSI_NIL, "").strip() in ("true", "1"):
            if fp.required:
                raise BindingError(child_path, "may not be nil")
            continue
        if fp.is_complex:
            value = read(child, fp.py_type, child_path)
        else:
            if len(child):
                raise BindingError(child_path, "elements are not allowed here")
            try:
                value = parse_scalar(fp, child.text or "")
            except ValueError as error:
                raise BindingError(child_path, str(error)) from None
        if fp.repeated:
            repeated.setdefault(fp.name, []).append(value)
        elif fp.name in kwargs:
            raise BindingError(child_path, "appears more than once")
        else:
            kwargs[fp.name] = value
    for name, items in repeated.items():
        kwargs[name] = tuple(items)
    for fp in plan.elems:
        if fp.required and fp.name not in kwargs:
            raise BindingError(path, f"element {fp.local!r} is missing")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise BindingError(path, str(error)) from None


# -------------------------------------------------------------------- writing
def _xsi_type_value(cls: type) -> str:
    return f"{PREFIXES[cls.__xml_ns__]}:{cls.__xml_name__}"


def _check_kind(value: Any, declared: type, where: str) -> None:
    cls = type(value)
    if not is_xml_type(cls) or not isinstance(value, declared):
        raise TypeError(
            f"{where}: expected {declared.__xml_name__}, got {cls.__name__}"
        )
    if cls.__xml_abstract__:
        raise TypeError(f"{where}: {cls.__name__} is abstract")


def write(
    value: Any, ns: str, local: str, declared: type | None = None
) -> etree._Element:
    """A new root element ``{ns}local`` holding ``value``; ``declared`` is the
    element's declared type (default: the value's own type)."""
    declared = declared or type(value)
    node = etree.Element(f"{{{ns}}}{local}", nsmap=NSMAP)
    _check_kind(value, declared, local)
    if type(value) is not declared or declared.__xml_abstract__:
        node.set(XSI_TYPE, _xsi_type_value(type(value)))
    _write_fields(node, value)
    return node


def _write_fields(node: etree._Element, value: Any) -> None:
    plan = plan_of(type(value))
    for fp in plan.attrs:
        item = getattr(value, fp.name)
        if item is None:
            if fp.required:
                raise ValueError(f"{type(value).__name__}.{fp.name} is required")
            continue
        node.set(fp.local, format_scalar(fp, item))
    for fp in plan.elems:
        item = getattr(value, fp.name)
        if fp.repeated:
            if not isinstance(item, (tuple, list)):
                raise TypeError(f"{type(value).__name__}.{fp.name} must be a tuple")
            items = item
        elif item is None:
            if fp.required:
                raise ValueError(f"{type(value).__name__}.{fp.name} is required")
            continue
        else:
            items = (item,)
        for one in items:
            child = etree.SubElement(node, fp.tag)
            if fp.is_complex:
                _check_kind(one, fp.py_type, f"{type(value).__name__}.{fp.name}")
                if type(one) is not fp.py_type or fp.py_type.__xml_abstract__:
                    child.set(XSI_TYPE, _xsi_type_value(type(one)))
                _write_fields(child, one)
            else:
                child.text = format_scalar(fp, one)
