"""The vend receipt: one content (receipt_data) for the text and the PDF
report; roll paper (58/80 mm, page cut to the content) or A4 as the sales point
says; reprints marked and logged, never creating credit."""

import datetime as dt
import itertools
import sys
import unittest
from decimal import Decimal as D
from unittest.mock import patch

import weasyprint
from trytond.model.exceptions import AccessError, ValidationError
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction
from trytond.transaction import Transaction

from ..receipt import (
    END_ANCHOR,
    PX_PER_MM,
    REPRINT_MARK,
    ReceiptData,
    Row,
    TokenRow,
    format_text,
    html_to_document,
    html_to_pdf,
    receipt_data,
)
from .staff import acting_as, create_user
from .vend_fixtures import open_session, with_vending

TOKEN = '12345678901234567890'
GROUPED = '1234 5678 9012 3456 7890'


def _fixed_token(self, units_kwh, fbe_kwh):
    "A known token instead of the STS engine (not a dependency here)"
    Token = Pool().get('prepaid.vend.token')
    return [Token(kind='credit', token=TOKEN, units=units_kwh, description='Credit')]


_TOKEN_NUMBERS = itertools.count(1)


def _numbered_token(self, units_kwh, fbe_kwh):
    "A distinct known token per vend (tells one vend's tokens from another's)"
    Token = Pool().get('prepaid.vend.token')
    digits = f'{next(_TOKEN_NUMBERS):020d}'
    return [Token(kind='credit', token=digits, units=units_kwh, description='Credit')]


def pages_mm(html: str) -> list[tuple[float, float]]:
    "Width and height of every page of the document converted to PDF"
    document = html_to_document(html)
    return [(p.width / PX_PER_MM, p.height / PX_PER_MM) for p in document.pages]


def _sample(**kw) -> ReceiptData:
    values = dict(
        number='R0001',
        utility='City Power',
        details=[Row('Receipt', 'R0001'), Row('Customer', 'A' * 80)],
        amounts=[
            Row('Fixed charge', '57.50'),
            Row('incl. VAT', '7.50', 'sub'),
            Row('Block 1: 50.0 kWh @ 1.38', '69.00'),
        ],
        units=[Row('kWh', '50.0', 'total')],
        tokens=[TokenRow('Credit 50.0', GROUPED)],
    )
    values.update(kw)
    return ReceiptData(**values)


class TextLayoutTestCase(unittest.TestCase):
    "format_text: pure layout, no database"

    def test_widths(self):
        for width in (32, 48, 80):
            text = format_text(_sample(), width)
            lines = text.splitlines()
            self.assertTrue(all(len(line) <= width for line in lines), text)
            self.assertIn(GROUPED, text)
            self.assertIn('Block 1: 50.0 kWh @ 1.38', text)
            self.assertIn('  incl. VAT', text)

    def test_reprint_and_cancelled_marks(self):
        text = format_text(_sample(reprint=True, cancelled=True))
        self.assertEqual(text.splitlines()[0].strip(), REPRINT_MARK)
        self.assertIn('CANCELLED', text)
        self.assertNotIn('REPRINT', format_text(_sample()))


class PdfLayoutTestCase(unittest.TestCase):
    "html_to_pdf: roll pages are cut to the content"

    def page_html(self, rows: int, size: str = '80mm 3000mm') -> str:
        body = ''.join(f'<p>line {i}</p>' for i in range(rows))
        return (
            f'<html><head><style>@page{{size:{size};margin:3mm}}'
            'body{margin:0}p{margin:0;font-size:10pt;line-height:5mm}'
            '</style></head>'
            f'<body>{body}<div id="{END_ANCHOR}"><!-- --></div></body></html>'
        )

    def test_roll_page_cut_to_content(self):
        short = pages_mm(self.page_html(4))
        long = pages_mm(self.page_html(20))
        ((width, height_short),) = short
        ((_, height_long),) = long
        self.assertAlmostEqual(width, 80, places=1)
        # 4 lines of 5 mm + 2 margins of 3 mm; every extra line adds 5 mm.
        self.assertAlmostEqual(height_short, 4 * 5 + 6, delta=0.5)
        self.assertAlmostEqual(height_long - height_short, 16 * 5, delta=0.5)

    def test_fixed_page_kept(self):
        html = self.page_html(4, size='A4').replace(f'id="{END_ANCHOR}"', '')
        ((width, height),) = pages_mm(html)
        self.assertAlmostEqual(width, 210, places=0)
        self.assertAlmostEqual(height, 297, places=0)

    def test_no_fetching(self):
        "Nothing is fetched from the file system or the network"
        html = self.page_html(1).replace(
            '<body>', '<body><img src="file:///etc/hostname"/>'
        )
        with patch('urllib.request.OpenerDirector.open') as opened:
            self.assertTrue(html_to_pdf(html).startswith(b'%PDF'))
        opened.assert_not_called()

    def test_px_per_mm(self):
        self.assertAlmostEqual(PX_PER_MM * 25.4, 96)


class ReceiptReportTestCase(unittest.TestCase):
    "The prepaid.vend.receipt report of real vends"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def vend(self, env, tender, key):
        Vend = Pool().get('prepaid.vend')
        with patch.object(Vend, 'issue_credit_tokens', _fixed_token):
            return Vend.vend(env.meter, D(tender), 'cash', env.sales_point, key)

    def render(self, vend_ids, data=None):
        "The HTML before conversion and the converted report"
        Report = Pool().get('prepaid.vend.receipt', type='report')
        rendered = []
        original = Report.convert.__func__

        def convert(cls, report, content, *args, **kwargs):
            rendered.append(content)
            return original(cls, report, content, *args, **kwargs)

        data = dict(data or {}, model='prepaid.vend')
        with patch.object(Report, 'convert', classmethod(convert)):
            ext, content, _, name = Report.execute(vend_ids, data)
        (html,) = rendered
        if isinstance(html, bytes):
            html = html.decode('utf-8')
        return html, ext, content

    @with_transaction()
    def test_report_pdf_content(self):
        "Token groups, receipt number, every deduction with its VAT, blocks"
        with with_vending() as env:
            env.sales_point.receipt_header = 'Head Office\nVAT no 4000'
            env.sales_point.receipt_footer = 'Thank you'
            env.sales_point.save()
            open_session(env)
            vend = self.vend(env, '300.00', 'rc1')
            data = receipt_data(vend)
            # The wizard's first print: the original.
            html, ext, content = self.render([vend.id], {'original': True})
            expected = [
                vend.number,
                GROUPED,
                env.meter.serial,
                'Thandi Mokoena',
                'Head Office',
                'Thank you',
                'Fixed charge',
                'Block 1: 50.0 kWh @ 1.38',
                'Total VAT',
                'incl. VAT',
                'TAX INVOICE',
                f'{vend.vat_amount:.2f}',
                vend.tariff_version.rec_name,
                env.company.rec_name,
            ]
            for text in expected:
                self.assertIn(text, html)
            # Every row of the structured content is in the page; a value is
            # never empty (an empty one is "in" any page), notes have none.
            rows = data.details + data.amounts + data.units
            self.assertTrue(data.details and data.amounts and data.units, data)
            for row in rows:
                self.assertTrue(row.label, row)
                self.assertIn(row.label, html)
                if row.kind == 'note':
                    self.assertEqual(row.value, '', row)
                    continue
                self.assertTrue(row.value, row)
                self.assertIn(row.value, html)
            self.assertIn('Credit token: 144.2 kWh', html)
            self.assertNotIn('REPRINT', html)
            self.assertEqual(ext, 'pdf')
            self.assertTrue(content.startswith(b'%PDF'))
            # The PDF carries the token digits as text.
            pages = weasyprint.HTML(string=html).render().pages
            self.assertEqual(len(pages), 1)

    @with_transaction()
    def test_report_paper_width(self):
        "80 mm, 58 mm roll cut to the content; A4 when the sales point says so"
        with with_vending() as env:
            open_session(env)
            vend = self.vend(env, '300.00', 'rc2')
            html, _, pdf = self.render([vend.id])
            self.assertTrue(pdf.startswith(b'%PDF'))
            ((width, height),) = pages_mm(html)
            self.assertAlmostEqual(width, 80, places=1)
            self.assertTrue(60 < height < 400, height)  # one receipt, not 3 m
            env.sales_point.receipt_width_mm = '58'
            env.sales_point.save()
            html, _, _ = self.render([vend.id])
            ((width, _),) = pages_mm(html)
            self.assertAlmostEqual(width, 58, places=1)
            self.assertIn('paper-58', html)
            env.sales_point.receipt_width_mm = 'a4'
            env.sales_point.save()
            html, _, _ = self.render([vend.id])
            ((width, height),) = pages_mm(html)
            self.assertAlmostEqual(width, 210, places=0)
            self.assertAlmostEqual(height, 297, places=0)
            # data['paper'] overrides the sales point.
            html, _, _ = self.render([vend.id], {'paper': '80'})
            ((width, _),) = pages_mm(html)
            self.assertAlmostEqual(width, 80, places=1)
            with self.assertRaisesRegex(ValidationError, 'Unknown receipt paper'):
                self.render([vend.id], {'paper': 'letter'})

    @with_transaction()
    def test_reprint_report(self):
        "A reprint is marked REPRINT, is logged and creates no credit"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Reprint = pool.get('prepaid.vend.reprint')
        Move = pool.get('account.move')
        with with_vending() as env:
            open_session(env)
            first = self.vend(env, '300.00', 'rp1')
            self.vend(env, '50.00', 'rp2')
            vends, moves = Vend.search_count([]), Move.search_count([])
            position = env.meter.month_positions[0].kwh
            ext, content, name = Reprint.reprint_report(env.meter, reason='lost')
            self.assertEqual(ext, 'pdf')
            self.assertTrue(content.startswith(b'%PDF'))
            self.assertEqual(Reprint.search_count([]), 2)
            self.assertEqual(Vend.search_count([]), vends)
            self.assertEqual(Move.search_count([]), moves)
            self.assertEqual(
                pool.get('prepaid.meter')(env.meter.id).month_positions[0].kwh,
                position,
            )
            # The marker is on the page of every receipt reprinted.
            html, _, _ = self.render([first.id], {'reprint': True})
            self.assertIn(REPRINT_MARK, html)
            self.assertIn(first.number, html)
            self.assertIn(GROUPED, html)
            # Without weasyprint (or pango) the counter still gets a
            # printable receipt: the HTML page.
            Report = pool.get('prepaid.vend.receipt', type='report')
            # The module the pool's report class comes from: the test may
            # have imported receipt.py a second time under another name.
            module = sys.modules[Report.convert.__func__.__module__]
            with patch.object(module, '_weasyprint', lambda: None):
                ext, content, _ = Reprint.reprint_report(env.meter, count=1)
            self.assertEqual(ext, 'html')
            content = content.decode() if isinstance(content, bytes) else content
            self.assertIn(REPRINT_MARK, content)
            self.assertEqual(Vend.search_count([]), vends)


def render_report(vend_ids, data) -> tuple[str, str]:
    "The HTML of the receipt report and its extension, as the client gets it"
    Report = Pool().get('prepaid.vend.receipt', type='report')
    rendered = []
    original = Report.convert.__func__

    def convert(cls, report, content, *args, **kwargs):
        rendered.append(content)
        return original(cls, report, content, *args, **kwargs)

    with patch.object(Report, 'convert', classmethod(convert)):
        ext, _, _, _ = Report.execute(vend_ids, dict(data, model='prepaid.vend'))
    (html,) = rendered
    return (html.decode('utf-8') if isinstance(html, bytes) else html), ext


class ReceiptAccessTestCase(unittest.TestCase):
    """A receipt is shown only through the record rules and never bypasses
    the reprint limit and log (issue 11 section 4a, issue 10 section 3)."""

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def sell(self, env, user, tender='100.00'):
        "user opens a shift and sells through the wizard: (session id, vend id)"
        pool = Pool()
        Session = pool.get('prepaid.cashier.session')
        Wizard = pool.get('prepaid.vend.wizard', type='wizard')
        with acting_as(user):
            if not Session.search([('state', '=', 'open')]):
                Session.open_session(env.sales_point)
            session_id, _, _ = Wizard.create()
            Wizard.execute(session_id, {}, 'start')
            Wizard.execute(
                session_id, {'start': {'search': env.meter.serial}}, 'select'
            )
            result = Wizard.execute(
                session_id,
                {'sale': {'payment_method': 'cash', 'tender': D(tender)}},
                'issue',
            )
        return session_id, result['view']['defaults']['vend']

    @with_transaction()
    def test_receipt_state_shows_only_the_wizards_own_vend(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Reprint = pool.get('prepaid.vend.reprint')
        Wizard = pool.get('prepaid.vend.wizard', type='wizard')
        with (
            with_vending() as env,
            patch.object(Vend, 'issue_credit_tokens', _fixed_token),
        ):
            alice = create_user('alice', 'group_cashier')
            bob = create_user('bob', 'group_cashier')
            _, alices = self.sell(env, alice)
            key = Vend(alices).idempotency_key
            with acting_as(bob):
                session_id, _, _ = Wizard.create()
                Wizard.execute(session_id, {}, 'start')
                # The vend id the client sends is never trusted...
                for state in ('receipt', 'refresh', 'print_'):
                    with self.assertRaisesRegex(AccessError, 'issued no vend'):
                        Wizard.execute(session_id, {'receipt': {'vend': alices}}, state)
                # ... nor Alice's request key: her vend is not Bob's.
                with self.assertRaises(AccessError):
                    Wizard.execute(
                        session_id, {'start': {'idempotency_key': key}}, 'receipt'
                    )
                # Print > Receipt on her vend: the record rule refuses it.
                with self.assertRaises(AccessError):
                    render_report([alices], {'original': True})
            self.assertEqual(Reprint.search_count([]), 0)

            # Alice's own earlier vend in a later wizard is not an original.
            table = Vend.__table__()
            cursor = Transaction().connection.cursor()
            earlier = dt.datetime.now() - dt.timedelta(hours=1)
            cursor.execute(
                *table.update([table.create_date], [earlier], where=table.id == alices)
            )
            with acting_as(alice):
                session_id, _, _ = Wizard.create()
                Wizard.execute(session_id, {}, 'start')
                with self.assertRaises(AccessError):
                    Wizard.execute(
                        session_id, {'start': {'idempotency_key': key}}, 'receipt'
                    )

    @with_transaction()
    def test_foreign_vend_id_after_a_sale_shows_and_prints_the_own_vend(self):
        "Bob's wizard, after his own sale, never shows or prints Alice's vend"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Reprint = pool.get('prepaid.vend.reprint')
        Wizard = pool.get('prepaid.vend.wizard', type='wizard')
        with (
            with_vending() as env,
            patch.object(Vend, 'issue_credit_tokens', _numbered_token),
        ):
            alice = create_user('alice3', 'group_cashier')
            bob = create_user('bob3', 'group_cashier')
            _, alices = self.sell(env, alice)
            session_id, bobs = self.sell(env, bob, '50.00')
            secrets = [
                text for t in Vend(alices).tokens for text in (t.token, t.grouped)
            ]
            # Her credit token, in both forms: what must not leak to Bob.
            self.assertEqual(len(secrets), 2)
            self.assertTrue(all(len(secret) >= 20 for secret in secrets), secrets)
            with acting_as(bob):
                shown = Wizard.execute(
                    session_id, {'receipt': {'vend': alices}}, 'receipt'
                )['view']['defaults']
                ((_, data),) = Wizard.execute(
                    session_id, {'receipt': {'vend': alices}}, 'print_'
                )['actions']
                # Print > Receipt on her vend: the record rule refuses it.
                with self.assertRaises(AccessError):
                    render_report([alices], {'original': True})
            self.assertEqual(shown['vend'], bobs)
            self.assertEqual(shown['tender'], D('50.00'))
            for secret in secrets:
                self.assertNotIn(secret, repr(shown))
            self.assertEqual(data['ids'], [bobs])
            self.assertEqual(Reprint.search_count([('vend', '=', alices)]), 0)

    @with_transaction()
    def test_print_receipt_is_a_logged_reprint(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Reprint = pool.get('prepaid.vend.reprint')
        Wizard = pool.get('prepaid.vend.wizard', type='wizard')
        with (
            with_vending() as env,
            patch.object(Vend, 'issue_credit_tokens', _fixed_token),
        ):
            alice = create_user('alice2', 'group_cashier')
            session_id, vend_id = self.sell(env, alice)
            with acting_as(alice):
                # The wizard's first print: the original, logged as such.
                ((_, data),) = Wizard.execute(session_id, {}, 'print_')['actions']
                html, ext = render_report(data['ids'], data)
                self.assertNotIn(REPRINT_MARK, html)
                self.assertIn(GROUPED, html)
                # Its second print, and Print > Receipt on the vend (whatever
                # the client says): reprints, marked and logged.
                html, _ = render_report(data['ids'], data)
                self.assertIn(REPRINT_MARK, html)
                html, _ = render_report([vend_id], {'reprint': False})
                self.assertIn(REPRINT_MARK, html)
            logs = Reprint.search([('vend', '=', vend_id)], order=[('id', 'ASC')])
            self.assertEqual(
                [(x.kind, x.user) for x in logs],
                [('original', alice), ('reprint', alice), ('reprint', alice)],
            )
            # Only the meter's last receipts (configuration: 5) are reprinted.
            for _ in range(5):
                self.sell(env, alice, '20.00')
            with acting_as(alice):
                with self.assertRaisesRegex(ValidationError, 'only the last 5'):
                    render_report([vend_id], {})
                self.assertIn(
                    REPRINT_MARK, render_report([Vend.search([])[0].id], {})[0]
                )
            self.assertEqual(Reprint.search_count([('vend', '=', vend_id)]), 3)
            # Groups that may not read the token do not reprint it.
            accountant = create_user('acc', 'group_accountant')
            with acting_as(accountant):
                with self.assertRaises(AccessError):
                    render_report([Vend.search([])[0].id], {})

    @with_transaction()
    def test_last_vends_only_what_the_cashier_may_read(self):
        "The Last Vends tab lists what the cashier may read: never #ERROR"
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Wizard = pool.get('prepaid.vend.wizard', type='wizard')
        with (
            with_vending() as env,
            patch.object(Vend, 'issue_credit_tokens', _fixed_token),
        ):
            alice = create_user('alice3', 'group_cashier')
            bob = create_user('bob3', 'group_cashier')
            _, alices = self.sell(env, alice)
            _, bobs = self.sell(env, bob)
            with acting_as(bob):
                session_id, _, _ = Wizard.create()
                Wizard.execute(session_id, {}, 'start')
                result = Wizard.execute(
                    session_id, {'start': {'search': env.meter.serial}}, 'select'
                )
                last = result['view']['defaults']['last_vends']
                self.assertEqual(last, [bobs])
                # What the client then reads for the list's cells.
                rows = Vend.read(last, ['number', 'tender', 'delivery_state'])
                self.assertEqual([r['id'] for r in rows], [bobs])
                with self.assertRaises(AccessError):
                    Vend.read([alices], ['number'])
