"""Selling electricity in a real browser on the demo database: admin opens a
cashier shift at the Head Office, runs the Sell Electricity wizard for a demo
keypad meter with a cash tender, and gets a 20-digit STS token that the engine
decodes, with the demo vending key, to the kWh the wizard quoted.  The
screenshot of the receipt goes to test-artifacts/vend.png.

Every step waits for a concrete state of the client (a value in a field, a
row, a button) rather than for time: sao answers asynchronously."""

import re
import sqlite3
from contextlib import closing
from decimal import Decimal

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect
from trytond.modules.prepaid_sts.demo import (
    DEMO_KEY_PARAMETERS,
    demo_vending_key,
)
from trytond.modules.prepaid_sts.engine import decode_token, derive_decoder_key

TENDER = '200'
#: Server answers take seconds on a busy 2-core machine: assertions on the
#: client's state wait as long as the page's own timeout (conftest.py).
WAIT = 20_000
TOKEN = re.compile(r'^(\d+\.\d) kWh: (\d{4}(?: \d{4}){4})$')


def demo_keypad_meter(database_file) -> tuple[str, str, str]:
    """(serial, PAN, tariff index) of the first residential keypad meter of
    the demo, read from the database file the server uses."""
    uri = f'file:{database_file}?mode=ro'
    with closing(sqlite3.connect(uri, uri=True)) as connection:
        row = connection.execute(
            'SELECT serial, sts_pan, sts_tariff_index FROM prepaid_meter '
            "WHERE kind = 'sts_keypad' AND sts_tariff_index = '01' "
            'AND sts_pan IS NOT NULL ORDER BY serial LIMIT 1'
        ).fetchone()
    assert row, 'the demo has no commissioned residential keypad meter'
    return row


def open_shift(page, server, database):
    "Open a shift at the Head Office unless admin has one open"
    page.goto(f'{server}#{database}/model/prepaid.cashier.session')
    page.wait_for_selector('th:has-text("Sales Point")')
    page.wait_for_load_state('networkidle')
    if page.locator('td:has-text("Open"):visible').count():
        return
    page.click('#new_:visible')
    page.wait_for_load_state('networkidle')
    sales_point = page.locator('input[name=sales_point]:visible')
    sales_point.fill('Head')
    widget = page.locator('.form-many2one:visible', has=sales_point)
    widget.locator('li.completion a:has-text("Head Office")').first.click()
    widget.locator('button[title="Clear the field"]').wait_for()
    page.click('#save:visible')
    page.wait_for_selector('text=Record saved')
    # The Close Shift button shows only on an open shift.
    page.locator('button:has-text("Close Shift"):visible').wait_for()


def click_until(button, target, attempts: int = 3) -> None:
    """Click button until target shows.  On a busy machine sao can redisplay
    the wizard just after a state change and swallow a click; the button is
    then still there and is clicked again.  Safe for Issue: the wizard keeps
    one request key, so a repeated Issue returns the same vend."""
    for _ in range(attempts):
        button.click()
        try:
            target.wait_for(timeout=WAIT)
            return
        except PlaywrightTimeoutError:
            if not button.is_visible():
                raise
    raise AssertionError(f'{button} never led to {target}')


def type_number(page, field, text: str, attempts: int = 3) -> None:
    """Type text into a numeric field of sao.  Its widget swaps inputs on
    focus, so the keys go to the focused one; a redisplay of the form just
    then drops them (the field stays empty): type again, never twice over."""
    formatted = f'{Decimal(text):.2f}'
    for _ in range(attempts):
        field.click()
        page.keyboard.type(text)
        page.keyboard.press('Tab')
        try:
            expect(field).to_have_value(formatted, timeout=WAIT // 4)
            return
        except AssertionError:
            if field.input_value() not in ('', formatted):
                raise
    expect(field).to_have_value(formatted, timeout=WAIT)


def test_sell_electricity(page, server, database, artifacts, demo_server):
    serial, pan, tariff_index = demo_keypad_meter(demo_server.file)
    open_shift(page, server, database)

    page.goto(
        f'{server}#{database}/wizard/prepaid.vend.wizard;name=%22Sell%20Electricity%22'
    )
    dialog = page.locator('.modal-dialog:visible')
    # Text typed before the wizard's defaults arrive is lost when sao
    # redisplays the form: wait for a default (the request key) first.
    key = dialog.locator('input[name=idempotency_key]')
    expect(key).to_have_value(re.compile(r'^[0-9a-f]{32}$'), timeout=WAIT)
    page.wait_for_load_state('networkidle')
    search = dialog.locator('input[name=search]')
    match = dialog.locator(f'td:has-text("{serial}")')
    for _ in range(3):
        search.fill(serial)
        # Leaving the field runs its on_change: one match fills the meter.
        search.press('Tab')
        try:
            match.wait_for(timeout=WAIT)
            break
        except PlaywrightTimeoutError:
            # On a busy machine a late answer of the wizard's start can still
            # redisplay the form and drop the text: only then type it again.
            if search.input_value() == serial:
                raise
    else:
        raise AssertionError('the search field kept losing the typed serial')
    expect(dialog.locator('input[name=meter]')).to_have_value(serial, timeout=WAIT)
    # A click while the on_change is still being applied is lost.
    page.wait_for_load_state('networkidle')
    tender = dialog.locator('input[name=tender]:visible')
    click_until(dialog.locator('button:has-text("Next")'), tender)
    expect(dialog.locator('input[name=tariff]')).to_have_value(
        re.compile('Resid'), timeout=WAIT
    )
    page.wait_for_load_state('networkidle')
    type_number(page, tender, TENDER)

    page.wait_for_load_state('networkidle')
    quote = dialog.locator('textarea[name=quote]:visible')
    dialog.locator('button:has-text("Trial")').click()
    expect(quote).to_have_value(re.compile(r'kWh\s+\d+\.\d'), timeout=WAIT)
    quoted = re.search(r'^kWh\s+(\d+\.\d)$', quote.input_value(), re.M).group(1)
    page.wait_for_load_state('networkidle')

    tokens = dialog.locator('textarea[name=tokens]:visible')
    click_until(dialog.locator('button:has-text("Issue")'), tokens)
    expect(tokens).to_have_value(TOKEN, timeout=WAIT)
    kwh, grouped = TOKEN.match(tokens.input_value()).groups()
    page.screenshot(path=artifacts / 'vend.png')

    assert kwh == quoted
    digits = grouped.replace(' ', '')
    assert len(digits) == 20
    p = DEMO_KEY_PARAMETERS
    decoder_key = derive_decoder_key(
        demo_vending_key(),
        p['dkga'],
        pan,
        int(p['key_type']),
        p['sgc'],
        tariff_index,
        p['krn'],
        p['base_date'],
        p['ea'],
    )
    decoded = decode_token(digits, decoder_key, p['ea'])
    assert decoded.crc_ok
    assert (decoded.token_class, decoded.subclass) == (0, 0)
    assert decoded.amount == Decimal(kwh)
