"""A cashier's day in a real browser, on the demo database (sao and headless
Chromium; the server and simulated meter fixtures are in conftest.py).

Admin, as the cashier, opens a shift at the Head Office; sells to a keypad
meter (the quote follows the tender as it is entered, the token on the
result decodes, with the demo vending key, to the kWh quoted; the wizard's
print is the original receipt); sells to a smart meter whose credit the
head-end delivers to a simulated meter right after the sale (confirmed on
screen); and reprints the keypad receipt through Print > Receipt: marked
REPRINT and in the print log; and closes the shift with a blind cash count
10.00 short: the review shows the difference, a reason is given, the shift
is closed with the difference booked.

The day is a list of steps (``DAY``) run in order on one page, so that a
later step can be appended.  Every step waits for a concrete state of the
client (a value, a row, a button) rather than for time: sao answers
asynchronously.  Screenshots go to
test-artifacts/."""

import io
import re
import sqlite3
from contextlib import closing
from decimal import Decimal
from types import SimpleNamespace

import pypdf
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect
from trytond.modules.prepaid_sts.engine import decode_token, derive_decoder_key

from prepaid_demo.sts import (
    DEMO_KEY_PARAMETERS,
    demo_vending_key,
)
from prepaid_demo.vendors import SAMPLE_METERS

TENDER = '200'
#: Server answers take seconds on a busy 2-core machine: assertions on the
#: client's state wait as long as the page's own timeout (conftest.py).
WAIT = 20_000
TOKEN = re.compile(r'Credit token: (\d+\.\d) kWh\s*(\d{4}(?: \d{4}){4})')
CONFIRMED = re.compile(r'credit sent to meter, confirmed at \d\d:\d\d')


def query(database_file, sql: str, *args):
    "Rows read from the database file the server uses (read-only)"
    uri = f'file:{database_file}?mode=ro'
    with closing(sqlite3.connect(uri, uri=True)) as connection:
        return connection.execute(sql, args).fetchall()


def demo_keypad_meter(database_file) -> tuple[str, str, str]:
    """(serial, PAN, tariff index) of the first residential keypad meter of
    the demo"""
    # Not a meter of the XMLVend samples: their customers' names carry
    # the serial, which the meter search's result would match twice.
    samples = ', '.join(f"'{serial}'" for serial in SAMPLE_METERS)
    rows = query(
        database_file,
        'SELECT serial, sts_pan, sts_tariff_index FROM prepaid_meter '
        "WHERE kind = 'sts_keypad' AND sts_tariff_index = '01' "
        f"AND serial NOT IN ({samples}) "
        "AND sts_pan IS NOT NULL AND state = 'installed' ORDER BY serial LIMIT 1",
    )
    assert rows, 'the demo has no commissioned residential keypad meter'
    return rows[0]


def pdf_text(download) -> str:
    "The text of a downloaded PDF"
    with open(download.path(), 'rb') as file:
        reader = pypdf.PdfReader(io.BytesIO(file.read()))
    return '\n'.join(p.extract_text() for p in reader.pages)


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


def close_wizard(page, dialog) -> None:
    "Click the wizard's Close until no dialog is left (a click can be swallowed)"
    for _ in range(3):
        dialog.locator('button:has-text("Close")').click()
        try:
            expect(page.locator('.modal-dialog:visible')).to_have_count(
                0, timeout=WAIT // 2
            )
            return
        except AssertionError:
            if not dialog.locator('button:has-text("Close")').count():
                raise
    raise AssertionError('the wizard never closed')


def type_number(page, field, text: str, attempts: int = 3) -> None:
    """Type text into a numeric field of sao and leave it (Tab: its
    on_change runs).  The widget swaps inputs on focus, so the keys go to the
    focused one; a redisplay of the form just then drops some or all of them:
    type again.  What the field holds is selected first, so that typing
    replaces it and never adds to it."""
    formatted = f'{Decimal(text):.2f}'
    for _ in range(attempts):
        try:
            field.click(timeout=WAIT // 4)
        except PlaywrightTimeoutError:
            # The input swapped for its twin just as it was clicked (a field
            # focused by sao when its form shows): find it again.
            continue
        page.keyboard.press('Control+A')
        page.keyboard.type(text)
        page.keyboard.press('Tab')
        try:
            expect(field).to_have_value(formatted, timeout=WAIT // 4)
            return
        except AssertionError:
            pass
    expect(field).to_have_value(formatted, timeout=WAIT)


def type_text(page, field, text: str, attempts: int = 3) -> None:
    """Fill a text field of sao and leave it; a redisplay of the dialog just
    then (a late on_change on a busy machine: seen when the SQLite and
    PostgreSQL runs share two cores) drops the text: fill it again."""
    for _ in range(attempts):
        field.fill(text)
        field.press('Tab')
        page.wait_for_load_state('networkidle')
        try:
            expect(field).to_have_value(text, timeout=WAIT // 4)
            return
        except AssertionError:
            pass
    expect(field).to_have_value(text, timeout=WAIT)


def sell(day, serial: str, tender: str):
    """Run Sell Electricity for serial with a cash tender up to the result;
    returns (dialog, kWh quoted on the sale step, receipt number)."""
    page = day.page
    # The vends list first: sao opens nothing for a URL it already shows.
    page.goto(f'{day.server}#{day.database}/model/prepaid.vend')
    page.locator('th:has-text("Receipt Number"):visible').first.wait_for()
    page.goto(
        f'{day.server}#{day.database}/wizard/prepaid.vend.wizard;'
        'name=%22Sell%20Electricity%22'
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
            # A late answer of the wizard's start can still redisplay the
            # form and drop the text: only then type it again.
            if search.input_value() == serial:
                raise
    else:
        raise AssertionError('the search field kept losing the typed serial')
    expect(dialog.locator('input[name=meter]')).to_have_value(serial, timeout=WAIT)
    page.wait_for_load_state('networkidle')
    tender_field = dialog.locator('input[name=tender]:visible')
    click_until(dialog.locator('button:has-text("Next")'), tender_field)
    # sao shows the sale view before it applies the wizard's defaults: a
    # tender typed in between runs its on_change with no meter (no quote).
    # The tariff is a default of this view only: wait for it.
    expect(dialog.locator('input[name=tariff]')).to_have_value(
        re.compile(r'.+'), timeout=WAIT
    )
    page.wait_for_load_state('networkidle')
    # The quote follows the tender: no Trial button any more.
    expect(dialog.locator('button:has-text("Trial")')).to_have_count(0)
    kwh = dialog.locator('input[name=units_kwh]:visible')
    for attempt in range(3):
        type_number(page, tender_field, tender)
        try:
            expect(kwh).to_have_value(re.compile(r'^\d+\.\d$'), timeout=WAIT)
            break
        except AssertionError:
            # The form was redisplayed while the quote came back (busy
            # machine): empty the field (a change, selected and deleted) and
            # enter the tender again, which is then a change too.
            page.screenshot(path=day.artifacts / f'cashier-quote-retry-{attempt}.png')
            tender_field.click()
            page.keyboard.press('Control+A')
            page.keyboard.press('Delete')
            page.keyboard.press('Tab')
            page.wait_for_load_state('networkidle')
    expect(kwh).to_have_value(re.compile(r'^\d+\.\d$'), timeout=WAIT)
    expect(dialog.locator('td:has-text("Block 1:")').first).to_be_visible()
    quoted = kwh.input_value()
    page.wait_for_load_state('networkidle')
    number = dialog.locator('input[name=vend]:visible')
    click_until(dialog.locator('button:has-text("Issue")'), number)
    expect(number).to_have_value(re.compile(r'^HO-\d+$'), timeout=WAIT)
    return dialog, quoted, number.input_value()


def open_shift(day) -> None:
    "Open a shift at the Head Office unless admin has one open"
    page = day.page
    page.goto(f'{day.server}#{day.database}/model/prepaid.cashier.session')
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


def sell_keypad(day) -> None:
    "A token for a keypad meter: prominent, decodable, its original receipt"
    serial, pan, tariff_index = demo_keypad_meter(day.demo_server.file)
    dialog, quoted, number = sell(day, serial, TENDER)
    token = dialog.locator('.richtext', has_text='Credit token')
    expect(token).to_have_text(TOKEN, timeout=WAIT)
    day.page.screenshot(path=day.artifacts / 'cashier-keypad-token.png')
    # The token is the most prominent text of the result: its digits stand
    # half as tall again as the form's labels.
    digits = token.locator('b').last.bounding_box()
    label = dialog.locator('label', has_text='Receipt').first.bounding_box()
    assert digits['height'] >= 1.4 * label['height'], (digits, label)
    kwh, grouped = TOKEN.search(token.inner_text()).groups()
    assert kwh == quoted
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
    decoded = decode_token(grouped.replace(' ', ''), decoder_key, p['ea'])
    assert decoded.crc_ok
    assert (decoded.token_class, decoded.subclass) == (0, 0)
    assert decoded.amount == Decimal(kwh)
    # The wizard's print: the original receipt, with the token.
    with day.page.expect_download() as download:
        dialog.locator('button:has-text("Print")').click()
    text = pdf_text(download.value)
    assert 'REPRINT' not in text, text
    assert grouped in text, text
    # sao's download dialog closes itself once the file is handed over.
    expect(day.page.locator('.modal-dialog:visible')).to_have_count(1, timeout=WAIT)
    close_wizard(day.page, dialog)
    day.sold['keypad'] = SimpleNamespace(number=number, token=grouped)


def sell_smart(day) -> None:
    "Remote credit: the delivery to the simulated meter confirmed on screen"
    serial = day.simulated_meter.serial
    state = day.simulated_meter.simulator.meter(0)
    credit_before = state.credit_wh
    dialog, quoted, number = sell(day, serial, TENDER)
    delivery = dialog.locator('.richtext', has_text='credit sent to meter')
    if not delivery.count():
        # The result was computed in the sale's own transaction: "pending";
        # the dispatch ran right after its commit.  Check Delivery shows it.
        expect(dialog.locator('.richtext', has_text='pending')).to_be_visible()
        click_until(dialog.locator('button:has-text("Check Delivery")'), delivery)
    expect(delivery).to_have_text(CONFIRMED, timeout=WAIT)
    day.page.screenshot(path=day.artifacts / 'cashier-smart-delivery.png')
    # The simulated meter draws about 1 kW meanwhile (integrated when it is
    # asked): the credit rose by the kWh quoted, less a few Wh consumed
    # since credit_before was read (seconds on a busy machine).
    used = float(quoted) * 1000 - (state.credit_wh - credit_before)
    assert -1 < used < 20, used
    close_wizard(day.page, dialog)
    day.sold['smart'] = SimpleNamespace(number=number)


def reprint(day) -> None:
    "Print > Receipt on a vend: a reprint, marked and in the print log"
    page, sold = day.page, day.sold['keypad']
    ((vend_id,),) = query(
        day.demo_server.file,
        'SELECT id FROM prepaid_vend WHERE number = ?',
        sold.number,
    )
    page.goto(f'{day.server}#{day.database}/model/prepaid.vend/{vend_id}')
    expect(page.locator('input[name=number]:visible')).to_have_value(sold.number)
    page.wait_for_load_state('networkidle')
    page.click('#print:visible')
    with page.expect_download() as download:
        page.click('ul.dropdown-menu a:has-text("Receipt"):visible')
    text = pdf_text(download.value)
    assert 'REPRINT' in text, text
    assert sold.token in text, text
    page.goto(f'{day.server}#{day.database}/model/prepaid.vend.reprint')
    row = page.locator('tr', has=page.locator(f'td:has-text("{sold.number}")'))
    expect(row.filter(has_text='Reprint').first).to_be_visible(timeout=WAIT)
    expect(row.filter(has_text='Original').first).to_be_visible(timeout=WAIT)
    page.screenshot(path=day.artifacts / 'cashier-print-log.png')


def close_shift(day) -> None:
    """Close Shift with a blind count 10.00 short: the count step shows no
    expected figure; the review shows the difference; with a reason, the
    shift closes with that difference booked."""
    page, database_file = day.page, day.demo_server.file
    ((session_id, opening_float),) = query(
        database_file,
        'SELECT s.id, CAST(s.opening_float AS TEXT) FROM prepaid_cashier_session s '
        "JOIN res_user u ON u.id = s.cashier WHERE u.login = 'admin' "
        "AND s.state = 'open'",
    )
    tenders = query(
        database_file,
        "SELECT CAST(tender AS TEXT) FROM prepaid_vend "
        "WHERE session = ? AND state = 'issued' "
        "AND payment_method = 'cash'",
        session_id,
    )
    # Both sales of the day were cash: only cash is counted.  (Amounts are
    # stored as text by trytond's SQLite backend.)
    expected = Decimal(opening_float) + sum(
        (Decimal(t) for (t,) in tenders), Decimal(0)
    )
    counted = expected - 10
    page.goto(f'{day.server}#{day.database}/model/prepaid.cashier.session/{session_id}')
    close = page.locator('button:has-text("Close Shift"):visible')
    close.wait_for()
    page.wait_for_load_state('networkidle')
    dialog = page.locator('.modal-dialog:visible')
    cash = dialog.locator('input[name=cash]:visible')
    click_until(close, cash)
    page.wait_for_load_state('networkidle')
    expect(cash).to_be_visible()
    # A blind count: nothing the system expects is on the count step.
    expect(dialog.locator('input[name=opening_float]:visible')).to_be_visible()
    for hidden in ('expected', 'difference', 'total_difference'):
        expect(dialog.locator(f'[name={hidden}]')).to_have_count(0)
    expect(dialog.locator('input[name=card]:visible')).to_have_count(0)
    type_number(page, cash, f'{counted:.2f}')
    total = dialog.locator('input[name=total_difference]:visible')
    click_until(dialog.locator('button:has-text("Review")'), total)
    expect(total).to_have_value('-10.00', timeout=WAIT)
    row = dialog.locator('tr', has=page.locator('td:has-text("Cash")'))
    expect(row.filter(has_text='-10.00').first).to_be_visible(timeout=WAIT)
    expect(row.filter(has_text=f'{expected:.2f}').first).to_be_visible()
    page.wait_for_load_state('networkidle')
    reason = dialog.locator('textarea[name=difference_reason]:visible')
    type_text(page, reason, 'Change given twice')
    page.screenshot(path=day.artifacts / 'cashier-close-review.png')
    dialog.locator('button:has-text("Confirm")').click()
    expect(page.locator('.modal-dialog:visible')).to_have_count(0, timeout=WAIT)
    # The form reloads: closed, no Close Shift button, the difference shown.
    expect(page.locator('input[name=difference]:visible')).to_have_value(
        '-10.00', timeout=WAIT
    )
    expect(close).to_have_count(0, timeout=WAIT)
    expect(page.locator('textarea[name=difference_reason]:visible')).to_have_value(
        'Change given twice'
    )
    page.screenshot(path=day.artifacts / 'cashier-shift-closed.png')
    ((state, difference, why),) = query(
        database_file,
        'SELECT state, CAST(difference AS TEXT), difference_reason '
        'FROM prepaid_cashier_session '
        'WHERE id = ?',
        session_id,
    )
    assert (state, Decimal(difference), why) == (
        'closed',
        Decimal('-10'),
        'Change given twice',
    )


#: The cashier's day, step by step (a step takes the day's namespace).
DAY = [open_shift, sell_keypad, sell_smart, reprint, close_shift]


def test_cashier_day(page, server, database, artifacts, demo_server, simulated_meter):
    day = SimpleNamespace(
        page=page,
        server=server,
        database=database,
        artifacts=artifacts,
        demo_server=demo_server,
        simulated_meter=simulated_meter,
        sold={},
    )
    for step in DAY:
        step(day)
