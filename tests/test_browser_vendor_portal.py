"""The vendor portal in a real browser, on the demo database (headless
Chromium; the server fixture is in conftest.py).

The demo bank's administrator logs in with the banner's login, sees the
float, the bank's till sells a token over XMLVend (SOAP, as a till would),
the reloaded dashboard shows the float down by the sale, a statement is
downloaded, an operator is added, and a receipt of another vendor, asked
for by URL, is not found.
"""

from __future__ import annotations

import io
import re
import urllib.request
from decimal import Decimal
from types import SimpleNamespace

import pypdf
from playwright.sync_api import expect
from test_browser_cashier import demo_keypad_meter
from trytond.modules.prepaid_vendor_portal import xmlvend as x
from trytond.modules.prepaid_vendor_portal.tests.xmlvend_route_fixtures import (
    credit_vend,
    envelope,
)

from prepaid_demo import vendors

WAIT = 20_000
AMOUNT = re.compile(r'([\d,]+\.\d\d)')


def sell(demo_server, seller, serial: str, amount: str) -> x.CreditVendResp:
    "A CreditVend to the demo server's XMLVend route, as a till sends it"
    body = envelope(credit_vend(seller, serial, amount, token=seller.token))
    request = urllib.request.Request(
        f'{demo_server.url}{demo_server.database}/xmlvend',
        body,
        {'Content-Type': 'text/xml; charset=utf-8'},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = x.read_response(response.read())
    assert isinstance(answer, x.CreditVendResp), answer
    return answer


def other_vendor(rpc) -> SimpleNamespace:
    """A second vendor of the demo utility with a till and a credit line
    (through JSON-RPC as admin), so that it can sell"""
    (demo,) = rpc(
        'model.prepaid.vendor.search_read',
        [('code', '=', vendors.VENDOR_CODE)],
        0,
        1,
        None,
        ['company', 'float_account'],
        {},
    )
    context = {'company': demo['company']}
    (party,) = rpc('model.party.party.create', [{'name': 'Other Bank'}], context)
    line = {'__class__': 'Decimal', 'decimal': '1000'}
    (vendor,) = rpc(
        'model.prepaid.vendor.create',
        [
            {
                'name': 'Other Bank',
                'code': 'OTHER-BANK',
                'party': party,
                'float_account': demo['float_account'],
                'credit_line': line,
            }
        ],
        context,
    )
    (outlet,) = rpc(
        'model.prepaid.vendor.outlet.create',
        [{'vendor': vendor, 'name': 'Branch', 'code': 'OTHER-B1'}],
        context,
    )
    token = 'other-bank-token-for-the-browser-test'
    (terminal,) = rpc(
        'model.prepaid.vendor.terminal.create',
        [
            {
                'outlet': outlet,
                'name': 'Till',
                'client_id': vendors.CLIENT_ID,
                'terminal_id': 'OTHER-T01',
                'api_token': token,
            }
        ],
        context,
    )
    for model, record in [('', vendor), ('.outlet', outlet), ('.terminal', terminal)]:
        rpc(f'model.prepaid.vendor{model}.activate', [record], context)
    return SimpleNamespace(
        client_id=vendors.CLIENT_ID, terminal_id='OTHER-T01', token=token
    )


def sale_ids(rpc, vendor_code: str) -> list[int]:
    return rpc(
        'model.prepaid.vendor.sale.search',
        [('vendor.code', '=', vendor_code)],
        0,
        None,
        None,
        {},
    )


def available(page) -> Decimal:
    text = page.locator('#available strong').inner_text()
    return Decimal(AMOUNT.search(text).group(1).replace(',', ''))


def test_vendor_portal_day(demo_server, demo_rpc, browser, artifacts):
    portal = f'{demo_server.url}{demo_server.database}/vendor-portal/'
    serial = demo_keypad_meter(demo_server.file)[0]
    bank = SimpleNamespace(
        client_id=vendors.CLIENT_ID,
        terminal_id=vendors.TERMINAL_ID,
        token=vendors.API_TOKEN,
    )
    # A phone's screen: the pages must work there.
    page = browser.new_page(
        viewport={'width': 390, 'height': 844}, accept_downloads=True
    )
    page.set_default_timeout(WAIT)
    try:
        page.goto(portal)
        expect(page).to_have_url(re.compile(r'/vendor-portal/login$'))
        page.fill('#email', vendors.PORTAL_EMAIL)
        page.fill('#password', vendors.PORTAL_PASSWORD)
        page.click('button[type=submit]')
        expect(page.locator('h1')).to_have_text('Dashboard')
        before = available(page)
        assert before > Decimal('100')

        answer = sell(demo_server, bank, serial, '100.00')
        assert answer.credit_vend_receipt.receipt_no
        page.reload()
        expect(page.locator('#today-count strong')).not_to_have_text('0')
        assert available(page) == before - Decimal('100.00')
        page.screenshot(path=artifacts / 'vendor-portal-dashboard.png')

        with page.expect_download() as download_info:
            page.click('text=Download statement')
        download = download_info.value
        assert download.suggested_filename.startswith('statement-DEMO-BANK-')
        data = open(download.path(), 'rb').read()
        assert data.startswith(b'%PDF')
        text = '\n'.join(
            p.extract_text() for p in pypdf.PdfReader(io.BytesIO(data)).pages
        )
        assert vendors.VENDOR_CODE in text
        # The statement is the float account in the books: its opening
        # top-up (the sale appears once the booking task has run).
        assert 'demo opening' in text
        assert '50000.00' in text

        page.click('header >> text=Operators')
        page.fill('#login', 'browser-op')
        page.fill('#password', 'browser-op-secret')
        page.click('text=Add operator')
        expect(page.locator('.note').first).to_contain_text('"browser-op" added')
        expect(page.locator('td', has_text='browser-op')).to_have_count(1)

        sell(demo_server, other_vendor(demo_rpc), serial, '20.00')
        (theirs,) = sale_ids(demo_rpc, 'OTHER-BANK')
        ours = sale_ids(demo_rpc, vendors.VENDOR_CODE)
        assert theirs not in ours
        refused = page.goto(f'{portal}sales/{theirs}')
        assert refused.status == 404
        expect(page.locator('h1')).to_have_text('Not found')
        assert page.goto(f'{portal}sales/{ours[0]}').status == 200
    except Exception:
        page.screenshot(path=artifacts / 'failed-vendor-portal.png')
        raise
    finally:
        page.close()
