"""The vendor portal: server-rendered pages for a vendor's staff, as
trytond routes under ``/<database>/vendor-portal/`` (docs/vendors.md
section 11).

A portal user is a Tryton web user (``web_user``) linked to one vendor
with a role (``prepaid.vendor.web_user``); it has no back-office login.
Each request runs as root in its own transaction, like the XMLVend route:
what a page may show is decided here, in one place, :class:`VendorScope`,
which adds the session's vendor to every search and never takes a vendor
from the URL.  A record of another vendor is "not found" (404), whatever
its id, so a guessed URL learns nothing.

- Log-in: ``web.user.authenticate`` (its attempts count and slow down
  repeated failures; past ``[session] max_attempt`` it refuses: 429); the
  session key in an HttpOnly, SameSite=Strict cookie limited to the
  portal's path.
- Every POST carries a CSRF token: derived from the session key once
  logged in, a random cookie's value (double submit) on the log-in form.
  Missing or wrong: 400 and nothing written.
- An expired, removed or forged session goes back to the log-in page.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from decimal import Decimal, InvalidOperation
from urllib.parse import quote
from zoneinfo import ZoneInfo

from trytond.exceptions import RateLimitException
from trytond.i18n import gettext
from trytond.pool import Pool
from trytond.protocols.wrappers import Response, with_pool, with_transaction
from trytond.wsgi import app

from . import portal_html as h
from . import settlement as s
from .settlement.daily import mask_token
from .vendor_statement import float_statement

PREFIX = '/<database_name>/vendor-portal/'
SESSION_COOKIE = 'vendor_portal_session'
LOGIN_COOKIE = 'vendor_portal_login'
#: Rows of a sales list; a longer period is cut (the page says so).
MAX_ROWS = 500
#: The longest statement or sales period.
MAX_DAYS = 366
ZERO = Decimal(0)
HEADERS = {
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'same-origin',
    'Content-Security-Policy': (
        "default-src 'none'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def base_url(database: str) -> str:
    # ':' and '@' stay as browsers send them (the cookie's path must match).
    return f'/{quote(database, safe=":@")}/vendor-portal/'


def csrf_token(session_key: str) -> str:
    """The form token of a session: one-way from the session key, which only
    the HttpOnly cookie carries, so another site cannot compute it"""
    return hashlib.sha256(b'vendor-portal-csrf\0' + session_key.encode()).hexdigest()


def same(given: str | None, expected: str | None) -> bool:
    return bool(given and expected) and hmac.compare_digest(
        given.encode(), expected.encode()
    )


def html(text: str, status: int = 200) -> Response:
    return Response(
        text, status=status, content_type='text/html; charset=utf-8', headers=HEADERS
    )


def redirect(location: str) -> Response:
    return Response('', status=303, headers={**HEADERS, 'Location': location})


def to_login(database: str) -> Response:
    "Back to the log-in page, without the (expired, removed, forged) cookie"
    response = redirect(base_url(database) + 'login')
    response.delete_cookie(SESSION_COOKIE, path=base_url(database))
    return response


# ------------------------------------------------------------- the gate
class VendorScope:
    """The only way a page reads records: each search is limited to the
    session's vendor, through the field that ties the model to a vendor."""

    VENDOR_FIELD = {
        'prepaid.vendor.sale': 'vendor',
        'prepaid.vendor.operator': 'vendor',
    }

    def __init__(self, vendor) -> None:
        self.vendor = vendor

    def search(self, model: str, domain, **kwargs):
        field = self.VENDOR_FIELD[model]  # KeyError: not a vendor's model
        return (
            Pool().get(model).search([(field, '=', self.vendor.id), domain], **kwargs)
        )

    def get(self, model: str, record_id: int):
        "The record of this vendor, or None (then the page answers 404)"
        records = self.search(model, [('id', '=', record_id)], limit=1)
        return records[0] if records else None


class Seat:
    "The logged-in portal user of a request: its link, vendor and scope"

    def __init__(self, link, key: str, database: str) -> None:
        self.link = link
        self.vendor = link.vendor
        self.scope = VendorScope(link.vendor)
        self.tz: ZoneInfo = link.vendor.timezone()
        currency = link.vendor.company.currency
        self.currency = currency.code
        self.digits = currency.digits
        self.frame = h.Frame(
            base=base_url(database),
            vendor=link.vendor.rec_name,
            user=link.web_user.email,
            role=link.role,
            csrf=csrf_token(key),
            administrator=link.is_administrator,
        )

    def today(self) -> dt.date:
        return dt.datetime.now(self.tz).date()

    def utc(self, day: dt.date) -> dt.datetime:
        "The start of the vendor's local day as trytond stores times (naive UTC)"
        start = dt.datetime.combine(day, dt.time(), self.tz)
        return start.astimezone(dt.UTC).replace(tzinfo=None)

    def local(self, at: dt.datetime) -> dt.datetime:
        return at.replace(tzinfo=dt.UTC).astimezone(self.tz)


def portal_page(administrator=False):
    """A logged-in page: the session checked (else the log-in page), the
    CSRF token of a POST checked (else 400), the role checked (else 403),
    then ``func(request, pool, seat, ...)``"""

    def decorator(func):
        @functools.wraps(func)
        def wrapper(request, pool, **kwargs):
            database_name = pool.database_name
            key = request.cookies.get(SESSION_COOKIE)
            link = pool.get('prepaid.vendor.web_user').of_session(key)
            if link is None:
                return to_login(database_name)
            seat = Seat(link, key, database_name)
            if request.method == 'POST' and not same(
                request.form.get('csrf'), seat.frame.csrf
            ):
                return html(
                    h.error_page(
                        "Bad request", gettext('prepaid_vendor_portal.msg_portal_csrf')
                    ),
                    400,
                )
            if administrator and not link.is_administrator:
                return html(
                    h.error_page(
                        "Forbidden",
                        gettext('prepaid_vendor_portal.msg_portal_administrator'),
                        seat.frame,
                    ),
                    403,
                )
            return func(request, pool, seat, **kwargs)

        return wrapper

    return decorator


def route(path: str, methods=('GET',)):
    "A portal URL: trytond's pool and a transaction of its own (as root)"

    def decorator(func):
        wrapped = with_pool(with_transaction()(func))
        app.route(PREFIX + path, methods=list(methods))(wrapped)
        return func

    return decorator


# ------------------------------------------------------------- log-in
@route('portal.css')
def portal_css(request, pool):
    return Response(h.CSS, content_type='text/css; charset=utf-8', headers=HEADERS)


@route('login', methods=('GET', 'POST'))
def login(request, pool):
    database = pool.database_name
    base = base_url(database)
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_hex(32)

    def page(error=None, email='', status=200):
        response = html(h.login_page(base, token, error, email), status)
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            path=base,
            httponly=True,
            samesite='Strict',
            secure=request.is_secure,
        )
        return response

    if request.method == 'GET':
        return page()
    if not same(request.form.get('csrf'), request.cookies.get(LOGIN_COOKIE)):
        return page(gettext('prepaid_vendor_portal.msg_portal_csrf'), status=400)
    email = (request.form.get('email') or '').strip()
    password = request.form.get('password') or ''
    WebUser = pool.get('web.user')
    Link = pool.get('prepaid.vendor.web_user')
    try:
        user = WebUser.authenticate(email, password) if email and password else None
    except RateLimitException:
        # web_user counted this attempt too; the transaction keeps it.
        return page(
            gettext('prepaid_vendor_portal.msg_portal_too_many'), email, status=429
        )
    link = Link.of_web_user(user) if user else None
    if link is None or link.vendor.state == 'terminated':
        # One message whatever was wrong: the page tells nobody which
        # e-mail addresses have a portal login.
        return page(gettext('prepaid_vendor_portal.msg_portal_login_failed'), email)
    key = user.new_session()
    response = redirect(base)
    response.set_cookie(
        SESSION_COOKIE,
        key,
        path=base,
        httponly=True,
        samesite='Strict',
        secure=request.is_secure,
    )
    response.delete_cookie(LOGIN_COOKIE, path=base)
    return response


@route('logout', methods=('POST',))
def logout(request, pool):
    database = pool.database_name
    key = request.cookies.get(SESSION_COOKIE)
    if key and same(request.form.get('csrf'), csrf_token(key)):
        pool.get('web.user.session').remove(key)
        return to_login(database)
    if pool.get('prepaid.vendor.web_user').of_session(key) is None:
        return to_login(database)
    return html(
        h.error_page("Bad request", gettext('prepaid_vendor_portal.msg_portal_csrf')),
        400,
    )


# ------------------------------------------------------------- pages
def logged_in(path: str, methods=('GET',), administrator=False):
    def decorator(func):
        route(path, methods)(portal_page(administrator)(func))
        return func

    return decorator


def _day(value: str | None, default: dt.date) -> dt.date:
    if not value:
        return default
    return dt.date.fromisoformat(value)


def period(request, seat: Seat) -> tuple[dt.date, dt.date]:
    "The from/to days of the query (default: today), ValueError if bad"
    today = seat.today()
    first = _day(request.args.get('from'), today)
    last = _day(request.args.get('to'), today)
    if last < first or (last - first).days >= MAX_DAYS:
        raise ValueError
    return first, last


def bad_period(seat: Seat) -> Response:
    text = gettext('prepaid_vendor_portal.msg_portal_period', days=MAX_DAYS)
    return html(h.error_page("Bad request", text, seat.frame), 400)


@logged_in('')
def dashboard(request, pool, seat: Seat):
    today = seat.today()
    sales = seat.scope.search(
        'prepaid.vendor.sale',
        [
            ('sold_at', '>=', seat.utc(today)),
            ('sold_at', '<', seat.utc(today + dt.timedelta(days=1))),
            ('vend.state', '=', 'issued'),
        ],
    )
    return html(
        h.dashboard_page(
            seat.frame,
            currency=seat.currency,
            balance=seat.vendor.float_balance,
            available=seat.vendor.float_available,
            today_count=len(sales),
            today_amount=sum((s_.vend.tender for s_ in sales), ZERO),
            today=today,
        )
    )


@logged_in('sales')
def sales(request, pool, seat: Seat):
    try:
        first, last = period(request, seat)
    except ValueError:
        return bad_period(seat)
    search = (request.args.get('q') or '').strip()[:64]
    domain = [
        ('sold_at', '>=', seat.utc(first)),
        ('sold_at', '<', seat.utc(last + dt.timedelta(days=1))),
    ]
    if search:
        pattern = f'%{search}%'
        domain.append(
            [
                'OR',
                ('vend.number', 'ilike', pattern),
                ('vend.meter.serial', 'ilike', pattern),
            ]
        )
    found = seat.scope.search('prepaid.vendor.sale', domain, limit=MAX_ROWS + 1)
    rows = [
        h.SaleRow(
            id=sale.id,
            sold_at=f'{seat.local(sale.sold_at):%Y-%m-%d %H:%M}',
            receipt=sale.vend.number or '',
            meter=sale.vend.meter.serial if sale.vend.meter else '',
            terminal=sale.terminal.terminal_id if sale.terminal else '',
            amount=sale.vend.tender,
            kwh=sale.vend.units_kwh,
            state=sale.vend.state,
        )
        for sale in found[:MAX_ROWS]
    ]
    page = h.sales_page(
        seat.frame,
        rows,
        currency=seat.currency,
        first=first,
        last=last,
        search=search,
        truncated=len(found) > MAX_ROWS,
    )
    return html(page)


@logged_in('sales/<int:sale_id>')
def receipt(request, pool, seat: Seat, sale_id: int):
    sale = seat.scope.get('prepaid.vendor.sale', sale_id)
    if sale is None:
        # Another vendor's sale or none at all: the same answer.
        text = gettext('prepaid_vendor_portal.msg_portal_not_found')
        return html(h.error_page("Not found", text, seat.frame), 404)
    vend = sale.vend
    money = functools.partial(h.money, currency=seat.currency)
    fields = [
        ("Receipt", vend.number or ''),
        ("Sold at", f'{seat.local(sale.sold_at):%Y-%m-%d %H:%M:%S %Z}'),
        ("Terminal", sale.terminal.terminal_id if sale.terminal else ''),
        ("Meter", vend.meter.serial if vend.meter else ''),
        ("Amount", money(vend.tender)),
        ("VAT", money(vend.vat_amount)),
        ("kWh", str(vend.units_kwh if vend.units_kwh is not None else '-')),
        ("Commission deducted", money(sale.commission)),
        ("State", vend.state),
    ]
    # The token's digits are the customer's credit: the portal shows the
    # last four only (a reprint goes through the utility).
    fields += [(f"Token ({t.kind})", mask_token(t.token)) for t in vend.tokens]
    return html(h.receipt_page(seat.frame, fields))


@logged_in('statement')
def statement(request, pool, seat: Seat):
    try:
        first, last = period(request, seat)
    except ValueError:
        return bad_period(seat)
    kind = request.args.get('format', 'pdf')
    if kind not in {'pdf', 'xlsx'}:
        text = gettext('prepaid_vendor_portal.msg_portal_format')
        return html(h.error_page("Bad request", text, seat.frame), 400)
    built = vendor_statement(seat, first, last)
    if kind == 'pdf':
        data, mime = s.statement_pdf(built), 'application/pdf'
    else:
        data = s.statement_xlsx(built)
        mime = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
    name = f'statement-{seat.vendor.code}-{first:%Y%m%d}-{last:%Y%m%d}.{kind}'
    return Response(
        data,
        content_type=mime,
        headers={**HEADERS, 'Content-Disposition': f'attachment; filename="{name}"'},
    )


def vendor_statement(seat: Seat, first: dt.date, last: dt.date) -> s.Statement:
    """The statement the XMLVend client gets too: the vendor's float account
    in the books (vendor_statement.py); sales appear once booked, the
    dashboard's available credit counts them at once."""
    return float_statement(seat.vendor, first, last, dt.datetime.now(seat.tz))


# ------------------------------------------------------------- operators
LIMITS = [
    ('max_amount', "Maximum sale"),
    ('daily_amount', "Daily amount"),
    ('daily_count', "Daily sales"),
]


def operator_rows(seat: Seat) -> list[h.OperatorRow]:
    return [
        h.OperatorRow(
            login=o.login,
            name=o.name or '',
            state=o.state,
            locked=bool(o.locked),
            max_amount=o.max_amount,
            daily_amount=o.daily_amount,
            daily_count=o.daily_count,
        )
        for o in seat.scope.search(
            'prepaid.vendor.operator', [], order=[('login', 'ASC')]
        )
    ]


def vendor_limits(seat: Seat) -> list[tuple[str, str]]:
    result = []
    for name, label in LIMITS:
        value = getattr(seat.vendor, name)
        if value is None:
            text = 'none'
        elif name == 'daily_count':
            text = str(value)
        else:
            text = h.money(value, seat.currency)
        result.append((label, text))
    return result


def operators_page(seat: Seat, status=200, **kwargs) -> Response:
    page = h.operators_page(
        seat.frame,
        operator_rows(seat),
        currency=seat.currency,
        limits=vendor_limits(seat),
        **kwargs,
    )
    return html(page, status)


@logged_in('operators', methods=('GET', 'POST'), administrator=True)
def operators(request, pool, seat: Seat):
    if request.method == 'GET':
        return operators_page(seat)
    form = {k: (request.form.get(k) or '').strip() for k in (
        'login', 'name', 'max_amount', 'daily_amount', 'daily_count')}  # fmt: skip
    try:
        values = operator_values(seat, form, request.form.get('password') or '')
    except ValueError as error:
        return operators_page(seat, 400, error=str(error), values=form)
    Operator = pool.get('prepaid.vendor.operator')
    (operator,) = Operator.create([values])
    Operator.activate([operator])
    done = gettext(
        'prepaid_vendor_portal.msg_portal_operator_added', login=form['login']
    )
    return operators_page(seat, done=done)


def operator_values(seat: Seat, form: dict[str, str], password: str) -> dict:
    """The new operator's values from the form, ValueError with the message
    to show: a login not used at this vendor, a password of at least
    [password] length characters, limits within the vendor's"""
    from trytond import config

    login = form['login']
    if not login or len(login) > 64 or any(c.isspace() for c in login):
        raise ValueError(gettext('prepaid_vendor_portal.msg_portal_operator_login'))
    if seat.scope.search('prepaid.vendor.operator', [('login', '=', login)], limit=1):
        raise ValueError(gettext('prepaid_vendor_portal.msg_operator_login_unique'))
    length = max(8, config.getint('password', 'length', default=0))
    if len(password) < length:
        raise ValueError(
            gettext('prepaid_vendor_portal.msg_portal_operator_password', length=length)
        )
    values = {
        'company': seat.vendor.company.id,
        'vendor': seat.vendor.id,
        'login': login,
        'name': form['name'][:128] or None,
        'password': password,
    }
    for name, label in LIMITS:
        text = form[name]
        if not text:
            continue
        try:
            value = int(text) if name == 'daily_count' else Decimal(text)
        except (ValueError, InvalidOperation):
            value = None
        if isinstance(value, Decimal) and not value.is_finite():
            value = None
        if value is None or value < 0:
            raise ValueError(
                gettext('prepaid_vendor_portal.msg_portal_operator_limit', limit=label)
            )
        ceiling = getattr(seat.vendor, name)
        if ceiling is not None and value > ceiling:
            raise ValueError(
                gettext(
                    'prepaid_vendor_portal.msg_portal_operator_above',
                    limit=label,
                    value=text,
                    ceiling=ceiling,
                )
            )
        if isinstance(value, Decimal):
            value = value.quantize(Decimal('0.01'))
        values[name] = value
    return values
