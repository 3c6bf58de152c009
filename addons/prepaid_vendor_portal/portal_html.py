"""The vendor portal's pages as HTML text, pure Python (no trytond import):
plain server-rendered HTML and one small style sheet that fits a phone
(no script at all).  Every value is escaped here; the routes (portal.py)
hand in plain values and never build HTML themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

CSS = """\
*{box-sizing:border-box}
body{margin:0;font:16px/1.4 system-ui,sans-serif;color:#1d2733;background:#f4f6f8}
header{background:#1f4e79;color:#fff;padding:.6em 1em;display:flex;flex-wrap:wrap;
gap:.6em;align-items:center}
header b{margin-right:auto}
header a,header button{color:#fff;background:none;border:0;font:inherit;padding:0;
text-decoration:underline;cursor:pointer}
header form.bare{background:none;box-shadow:none;padding:0;margin:0}
main{max-width:60em;margin:0 auto;padding:1em}
h1{font-size:1.3em;margin:.2em 0 .6em}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(12em,1fr));gap:.8em}
.card{background:#fff;border-radius:6px;padding:.8em;box-shadow:0 1px 2px #0002}
.card span{display:block;font-size:.85em;color:#5a6772}
.card strong{font-size:1.4em}
form{background:#fff;border-radius:6px;padding:.8em;margin:.8em 0;
box-shadow:0 1px 2px #0002}
label{display:block;margin:.4em 0 .1em;font-size:.9em}
input,select,button{font:inherit;padding:.45em;max-width:100%}
input,select{width:100%;border:1px solid #9aa5b1;border-radius:4px}
button{background:#1f4e79;color:#fff;border:0;border-radius:4px;margin-top:.6em;
padding:.5em 1em}
.inline{display:flex;flex-wrap:wrap;gap:.5em;align-items:end}
.inline label{flex:1 1 9em}
.inline button{flex:0 0 auto}
.table{overflow-x:auto}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{padding:.4em .5em;border-bottom:1px solid #dde2e6;text-align:left}
td.n,th.n{text-align:right;white-space:nowrap}
.error{background:#fde8e8;color:#8a1c1c;padding:.6em;border-radius:4px}
.note{background:#e8f3fd;padding:.6em;border-radius:4px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3em 1em;background:#fff;
padding:.8em;border-radius:6px}
dt{color:#5a6772}dd{margin:0}
"""


@dataclass(frozen=True)
class Frame:
    "What every logged-in page shows: who, for which vendor, the form token"

    base: str  # the portal's URL, ending with '/'
    vendor: str
    user: str
    role: str
    csrf: str
    administrator: bool


@dataclass(frozen=True)
class SaleRow:
    id: int
    sold_at: str  # local time, as shown
    receipt: str
    meter: str
    terminal: str
    amount: Decimal
    kwh: Decimal | None
    state: str


@dataclass(frozen=True)
class OperatorRow:
    login: str
    name: str
    state: str
    locked: bool
    max_amount: Decimal | None
    daily_amount: Decimal | None
    daily_count: int | None


def e(value) -> str:
    return escape('' if value is None else str(value), quote=True)


def money(amount: Decimal | None, currency: str) -> str:
    if amount is None:
        return '-'
    return f'{currency} {amount:,.2f}'


def document(title: str, body: str, frame: Frame | None = None, base: str = '') -> str:
    "A whole page: the viewport for phones, the style sheet, the header"
    base = frame.base if frame else base
    header = ''
    if frame is not None:
        admin = (
            f'<a href="{e(base)}operators">Operators</a>' if frame.administrator else ''
        )
        header = (
            '<header>'
            f'<b>{e(frame.vendor)}</b>'
            f'<a href="{e(base)}">Dashboard</a>'
            f'<a href="{e(base)}sales">Sales</a>'
            f'{admin}'
            f'<form method="post" action="{e(base)}logout" class="bare">'
            f'{csrf_field(frame.csrf)}<button type="submit">Log out '
            f'{e(frame.user)}</button></form>'
            '</header>'
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{e(title)} - Vendor portal</title>'
        f'<link rel="stylesheet" href="{e(base)}portal.css">'
        f'</head><body>{header}<main><h1>{e(title)}</h1>{body}</main></body></html>\n'
    )


def csrf_field(token: str) -> str:
    return f'<input type="hidden" name="csrf" value="{e(token)}">'


def message(text: str | None, kind: str = 'error') -> str:
    return f'<p class="{kind}" role="alert">{e(text)}</p>' if text else ''


def login_page(base: str, csrf: str, error: str | None = None, email: str = '') -> str:
    body = (
        message(error)
        + f'<form method="post" action="{e(base)}login">{csrf_field(csrf)}'
        '<label for="email">E-mail</label>'
        f'<input id="email" name="email" type="email" autocomplete="username" '
        f'required value="{e(email)}">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<button type="submit">Log in</button></form>'
    )
    return document('Vendor portal log-in', body, base=base)


def dashboard_page(
    frame: Frame,
    *,
    currency: str,
    balance: Decimal | None,
    available: Decimal | None,
    today_count: int,
    today_amount: Decimal,
    today: dt.date,
) -> str:
    cards = [
        ('Float balance (booked)', money(balance, currency), 'balance'),
        ('Available to sell', money(available, currency), 'available'),
        ("Today's sales", str(today_count), 'today-count'),
        ("Today's sales amount", money(today_amount, currency), 'today-amount'),
    ]
    body = '<div class="cards">' + ''.join(
        f'<div class="card" id="{key}"><span>{e(label)}</span>'
        f'<strong>{e(value)}</strong></div>'
        for label, value, key in cards
    )
    body += '</div>' + statement_form(frame, today.replace(day=1), today)
    return document('Dashboard', body, frame)


def period_inputs(first: dt.date, last: dt.date) -> str:
    return (
        '<label>From<input type="date" name="from" '
        f'value="{first.isoformat()}" required></label>'
        '<label>To<input type="date" name="to" '
        f'value="{last.isoformat()}" required></label>'
    )


def statement_form(frame: Frame, first: dt.date, last: dt.date) -> str:
    return (
        f'<form method="get" action="{e(frame.base)}statement" class="inline">'
        + period_inputs(first, last)
        + '<label>Format<select name="format"><option value="pdf">PDF</option>'
        '<option value="xlsx">Excel (XLSX)</option></select></label>'
        '<button type="submit">Download statement</button></form>'
    )


def sales_page(
    frame: Frame,
    rows: Sequence[SaleRow],
    *,
    currency: str,
    first: dt.date,
    last: dt.date,
    search: str,
    truncated: bool,
) -> str:
    body = (
        f'<form method="get" action="{e(frame.base)}sales" class="inline">'
        + period_inputs(first, last)
        + '<label>Meter or receipt<input type="search" name="q" '
        f'value="{e(search)}"></label><button type="submit">Show</button></form>'
    )
    if not rows:
        body += message('No sale in this period.', 'note')
    else:
        total = sum((r.amount for r in rows if r.state == 'issued'), Decimal(0))
        body += (
            '<div class="table"><table><thead><tr><th>Time</th><th>Receipt</th>'
            '<th>Meter</th><th>Terminal</th><th class="n">Amount</th>'
            '<th class="n">kWh</th><th>State</th></tr></thead><tbody>'
        )
        for row in rows:
            body += (
                f'<tr><td>{e(row.sold_at)}</td>'
                f'<td><a href="{e(frame.base)}sales/{row.id}">{e(row.receipt)}</a>'
                f'</td><td>{e(row.meter)}</td><td>{e(row.terminal)}</td>'
                f'<td class="n">{e(money(row.amount, currency))}</td>'
                f'<td class="n">{e(row.kwh if row.kwh is not None else "-")}</td>'
                f'<td>{e(row.state)}</td></tr>'
            )
        body += (
            f'</tbody><tfoot><tr><th colspan="4">{len(rows)} sales</th>'
            f'<th class="n">{e(money(total, currency))}</th><th colspan="2"></th>'
            '</tr></tfoot></table></div>'
        )
        if truncated:
            body += message(
                'Only the latest sales are shown: narrow the period or search.', 'note'
            )
    body += statement_form(frame, first, last)
    return document('Sales', body, frame)


def receipt_page(frame: Frame, fields: Iterable[tuple[str, str]]) -> str:
    body = (
        '<dl>'
        + ''.join(f'<dt>{e(label)}</dt><dd>{e(value)}</dd>' for label, value in fields)
        + f'</dl><p><a href="{e(frame.base)}sales">Back to the sales</a></p>'
    )
    return document('Receipt', body, frame)


def operators_page(
    frame: Frame,
    rows: Sequence[OperatorRow],
    *,
    currency: str,
    limits: Sequence[tuple[str, str]],
    error: str | None = None,
    done: str | None = None,
    values: dict[str, str] | None = None,
) -> str:
    values = values or {}
    body = message(error) + message(done, 'note')
    body += (
        '<div class="table"><table><thead><tr><th>Login</th><th>Name</th>'
        '<th>State</th><th class="n">Max. sale</th><th class="n">Daily amount</th>'
        '<th class="n">Daily sales</th></tr></thead><tbody>'
    )
    for row in rows:
        state = row.state + (' (locked)' if row.locked else '')
        count = row.daily_count if row.daily_count is not None else '-'
        body += (
            f'<tr><td>{e(row.login)}</td><td>{e(row.name)}</td><td>{e(state)}</td>'
            f'<td class="n">{e(money(row.max_amount, currency))}</td>'
            f'<td class="n">{e(money(row.daily_amount, currency))}</td>'
            f'<td class="n">{e(count)}</td></tr>'
        )
    body += '</tbody></table></div>'

    def field(name: str, label: str, kind: str = 'text', extra: str = '') -> str:
        value = '' if kind == 'password' else f' value="{e(values.get(name, ""))}"'
        return (
            f'<label for="{name}">{e(label)}</label>'
            f'<input id="{name}" name="{name}" type="{kind}"{value} {extra}>'
        )

    body += (
        f'<form method="post" action="{e(frame.base)}operators">'
        + csrf_field(frame.csrf)
        + '<h2>Add an operator</h2>'
        + message(
            'Limits set by the utility for the vendor: '
            + '; '.join(f'{label} {value}' for label, value in limits),
            'note',
        )
        + field('login', 'Login', extra='required maxlength="64"')
        + field('name', 'Name', extra='maxlength="128"')
        + field(
            'password', 'Password', 'password', 'required autocomplete="new-password"'
        )
        + field('max_amount', 'Maximum sale', extra='inputmode="decimal"')
        + field('daily_amount', 'Daily amount', extra='inputmode="decimal"')
        + field('daily_count', 'Daily sales', extra='inputmode="numeric"')
        + '<button type="submit">Add operator</button></form>'
    )
    return document('Operators', body, frame)


def error_page(
    title: str, text: str, frame: Frame | None = None, base: str = ''
) -> str:
    return document(title, message(text), frame, base=base)
