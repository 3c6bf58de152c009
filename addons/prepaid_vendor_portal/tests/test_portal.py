"""The vendor portal's pages on their trytond routes (werkzeug's test
client, every request its own committed transaction as in production):
log-in, dashboard, sales, receipts, statements, operators, and each
refusal (wrong password, throttling, expired or forged session, missing
CSRF token, a Vendor Operator adding an operator, another vendor's
receipt)."""

from __future__ import annotations

import datetime as dt
import io
import re
import unittest
import uuid
from decimal import Decimal

import openpyxl
import pypdf
import pytest
from trytond.model.exceptions import AccessError
from trytond.modules.prepaid_vending.tests.staff import acting_as, create_user
from trytond.pool import Pool
from trytond.tests.test_tryton import DB_NAME, with_transaction
from trytond.transaction import Transaction
from trytond.wsgi import app
from werkzeug.test import Client

from ..portal import SESSION_COOKIE, VendorScope
from .xmlvend_route_fixtures import (
    ADDRESS,
    XMLVendRouteMixin,
    committed,
    credit_vend,
)

pytestmark = pytest.mark.database

BASE = f'/{DB_NAME}/vendor-portal/'
PASSWORD = 'portal-secret-1'
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
FAILED = 'Wrong e-mail or password.'


def add_portal_user(seller, role: str, email: str | None = None) -> str:
    "A web user linked to seller's vendor with role (committed); its e-mail"
    email = email or f'{role}-{uuid.uuid4().hex[:8]}@example.com'

    def make():
        pool = Pool()
        WebUser = pool.get('web.user')
        Link = pool.get('prepaid.vendor.web_user')
        Vendor = pool.get('prepaid.vendor')
        (user,) = WebUser.create([{'email': email, 'password': PASSWORD}])
        vendor = Vendor(seller.vendor)
        Link.create(
            [
                {
                    'company': vendor.company.id,
                    'vendor': vendor.id,
                    'web_user': user.id,
                    'role': role,
                }
            ]
        )

    committed(make)
    return email


def count(model: str, domain) -> int:
    return committed(lambda: Pool().get(model).search_count(domain))


def sales_of(seller) -> list[tuple[int, str, str]]:
    "(sale id, receipt number, first token) of seller's sales"

    def read():
        Sale = Pool().get('prepaid.vendor.sale')
        return [
            (s.id, s.vend.number, s.vend.tokens[0].token)
            for s in Sale.search(
                [('vendor', '=', seller.vendor)], order=[('id', 'ASC')]
            )
        ]

    return committed(read)


class PortalTestCase(XMLVendRouteMixin, unittest.TestCase):
    "The vendor portal's pages and their refusals"

    def browser(self) -> Client:
        return Client(app)

    def log_in(self, email: str, password: str = PASSWORD, client=None):
        "(client, response of the log-in POST)"
        client = client or self.browser()
        page = client.get(BASE + 'login', environ_base=ADDRESS)
        self.assertEqual(page.status_code, 200)
        (token,) = CSRF.findall(page.text)
        response = client.post(
            BASE + 'login',
            data={'email': email, 'password': password, 'csrf': token},
            environ_base=ADDRESS,
        )
        return client, response

    def logged_in(self, email: str) -> Client:
        client, response = self.log_in(email)
        self.assertEqual(response.status_code, 303, response.text)
        return client

    def csrf(self, client) -> str:
        (token,) = CSRF.findall(client.get(BASE).text)
        return token

    def assertToLogin(self, response):
        self.assertEqual(response.status_code, 303)
        self.assertTrue(response.headers['Location'].endswith('/vendor-portal/login'))

    # -- log-in, dashboard, log-out ------------------------------------------
    def test_login_dashboard_sale_logout(self):
        "The session cookie's flags; the dashboard follows a sale; log-out ends it"
        seller = self.new_seller()
        email = add_portal_user(seller, 'operator')
        client, response = self.log_in(email)
        self.assertEqual(response.status_code, 303)
        self.assertEqual(response.headers['Location'], BASE)
        cookie = next(
            c
            for c in response.headers.getlist('Set-Cookie')
            if c.startswith(SESSION_COOKIE + '=')
        )
        self.assertIn('HttpOnly', cookie)
        self.assertIn('SameSite=Strict', cookie)
        self.assertIn(f'Path={BASE}', cookie)

        page = client.get(BASE)
        self.assertEqual(page.status_code, 200)
        self.assertIn('name="viewport"', page.text)
        self.assertRegex(page.text, r'id="available">.*?500\.00<')
        self.assertRegex(page.text, r'id="today-count"><span>[^<]*</span><strong>0<')
        self.assertEqual(page.headers['Cache-Control'], 'no-store')

        status, _ = self.post(credit_vend(seller, self.env.meter, '100.00'))
        self.assertEqual(status, 200)
        page = client.get(BASE)
        self.assertRegex(page.text, r'id="available">.*?400\.00<')
        self.assertRegex(page.text, r'id="today-count"><span>[^<]*</span><strong>1<')
        self.assertRegex(page.text, r'id="today-amount">.*? 100\.00<')

        sessions = count('web.user.session', [])
        response = client.post(BASE + 'logout', data={'csrf': self.csrf(client)})
        self.assertToLogin(response)
        self.assertToLogin(client.get(BASE))
        self.assertEqual(count('web.user.session', []), sessions - 1)

    def test_wrong_password_generic_and_counted(self):
        """A wrong password, an unknown e-mail, a web user of no vendor: the
        same message, no session; web_user counts the failed attempt"""
        seller = self.new_seller()
        email = add_portal_user(seller, 'administrator')
        stranger = f'nobody-{uuid.uuid4().hex[:6]}@example.com'

        def no_vendor():
            (user,) = (
                Pool()
                .get('web.user')
                .create([{'email': stranger, 'password': PASSWORD}])
            )

        committed(no_vendor)
        attempts = 'web.user.authenticate.attempt'
        sessions = count('web.user.session', [])
        for login, password in [
            (email, 'wrong-password'),
            ('unknown@example.com', PASSWORD),
            (stranger, PASSWORD),
        ]:
            with self.subTest(login=login):
                client, response = self.log_in(login, password)
                self.assertEqual(response.status_code, 200)
                self.assertIn(FAILED, response.text)
                self.assertIsNone(client.get_cookie(SESSION_COOKIE, path=BASE))
                self.assertToLogin(client.get(BASE))
        self.assertEqual(count(attempts, [('login', '=', email)]), 1)
        self.assertEqual(count('web.user.session', []), sessions)  # none at all
        # The right password clears the count (web_user's own behaviour).
        self.logged_in(email)
        self.assertEqual(count(attempts, [('login', '=', email)]), 0)

    def test_throttled_after_max_attempts(self):
        "Past [session] max_attempt failures, even the right password is refused"
        seller = self.new_seller()
        email = add_portal_user(seller, 'operator')

        def fail_often():
            Attempt = Pool().get('web.user.authenticate.attempt')
            for _ in range(6):
                Attempt.add(email)

        committed(fail_often)
        client, response = self.log_in(email)
        self.assertEqual(response.status_code, 429)
        self.assertIn('Too many failed log-ins', response.text)
        self.assertToLogin(client.get(BASE))

    def test_expired_and_forged_session(self):
        "A forged cookie or an expired session: back to the log-in page"
        seller = self.new_seller()
        email = add_portal_user(seller, 'operator')
        forged = self.browser()
        forged.set_cookie(SESSION_COOKIE, 'f' * 64, path=BASE)
        for path in ['', 'sales', 'statement', 'operators', 'sales/1']:
            with self.subTest(path=path):
                self.assertToLogin(forged.get(BASE + path))

        client = self.logged_in(email)
        self.assertEqual(client.get(BASE).status_code, 200)

        def expire():
            Session = Pool().get('web.user.session')
            table = Session.__table__()
            old = dt.datetime.now() - dt.timedelta(days=400)
            Transaction().connection.cursor().execute(
                *table.update(
                    [table.create_date, table.write_date],
                    [old, old],
                    where=table.key != '',
                )
            )

        committed(expire)
        self.assertToLogin(client.get(BASE))

    # -- forms: CSRF, roles --------------------------------------------------
    def test_csrf_missing_is_400_and_changes_nothing(self):
        seller = self.new_seller()
        email = add_portal_user(seller, 'administrator')
        operators = [('vendor', '=', seller.vendor)]
        before = count('prepaid.vendor.operator', operators)
        client = self.logged_in(email)
        form = {'login': 'bob', 'password': 'bob-secret-1'}
        for token in [None, 'x' * 64]:
            data = form if token is None else {**form, 'csrf': token}
            response = client.post(BASE + 'operators', data=data)
            self.assertEqual(response.status_code, 400)
        self.assertEqual(count('prepaid.vendor.operator', operators), before)
        # Log-out without the token: refused, the session still valid.
        self.assertEqual(client.post(BASE + 'logout').status_code, 400)
        self.assertEqual(client.get(BASE).status_code, 200)
        # The log-in form too.
        fresh = self.browser()
        fresh.get(BASE + 'login')
        response = fresh.post(
            BASE + 'login', data={'email': email, 'password': PASSWORD}
        )
        self.assertEqual(response.status_code, 400)
        self.assertToLogin(fresh.get(BASE))

    def test_vendor_operator_cannot_add_operator(self):
        seller = self.new_seller()
        email = add_portal_user(seller, 'operator')
        operators = [('vendor', '=', seller.vendor)]
        before = count('prepaid.vendor.operator', operators)
        client = self.logged_in(email)
        self.assertNotIn('operators"', client.get(BASE).text)  # no menu entry
        self.assertEqual(client.get(BASE + 'operators').status_code, 403)
        response = client.post(
            BASE + 'operators',
            data={
                'login': 'bob',
                'password': 'bob-secret-1',
                'csrf': self.csrf(client),
            },
        )
        self.assertEqual(response.status_code, 403)
        self.assertEqual(count('prepaid.vendor.operator', operators), before)

    def test_administrator_adds_operator_within_limits(self):
        seller = self.new_seller()

        def limit():
            Vendor = Pool().get('prepaid.vendor')
            Vendor.write([Vendor(seller.vendor)], {'max_amount': Decimal('200')})

        committed(limit)
        email = add_portal_user(seller, 'administrator')
        client = self.logged_in(email)
        page = client.get(BASE + 'operators')
        self.assertEqual(page.status_code, 200)
        self.assertIn('alice', page.text)  # the fixture's operator
        self.assertRegex(page.text, r'Maximum sale \w+ 200\.00;')
        token = self.csrf(client)
        operators = [('vendor', '=', seller.vendor)]
        before = count('prepaid.vendor.operator', operators)
        for data, text in [
            ({'login': 'bob', 'password': 'pw', 'max_amount': '100'}, 'at least 8'),
            (
                {'login': 'bob', 'password': 'bob-secret-1', 'max_amount': '300'},
                'above',
            ),
            ({'login': 'bob', 'password': 'bob-secret-1', 'max_amount': 'x'}, 'number'),
            ({'login': 'alice', 'password': 'bob-secret-1'}, 'already has'),
            ({'login': 'b o b', 'password': 'bob-secret-1'}, 'without spaces'),
        ]:
            with self.subTest(data=data):
                response = client.post(BASE + 'operators', data={**data, 'csrf': token})
                self.assertEqual(response.status_code, 400)
                self.assertIn(text, response.text)
        self.assertEqual(count('prepaid.vendor.operator', operators), before)

        response = client.post(
            BASE + 'operators',
            data={
                'login': 'bob',
                'name': 'Bob <b>',
                'password': 'bob-secret-1',
                'max_amount': '150',
                'csrf': token,
            },
        )
        self.assertEqual(response.status_code, 200, response.text)
        self.assertIn('Operator &quot;bob&quot; added', response.text)
        self.assertIn('Bob &lt;b&gt;', response.text)  # escaped

        def read():
            Operator = Pool().get('prepaid.vendor.operator')
            (bob,) = Operator.search(operators + [('login', '=', 'bob')])
            return bob.state, bob.max_amount, bob.verify_password('bob-secret-1')

        self.assertEqual(committed(read), ('active', Decimal('150.00'), True))

    # -- sales, receipts, statements -----------------------------------------
    def test_sales_search_and_receipt(self):
        seller, other = self.new_seller(), self.new_seller()
        for amount in ['50.00', '70.00']:
            status, _ = self.post(credit_vend(seller, self.env.meter, amount))
            self.assertEqual(status, 200)
        status, _ = self.post(credit_vend(other, self.env.meter, '30.00'))
        self.assertEqual(status, 200)
        (first, number, token), (_, second_number, _) = sales_of(seller)
        ((theirs, their_number, _),) = sales_of(other)
        client = self.logged_in(add_portal_user(seller, 'operator'))

        page = client.get(BASE + 'sales')
        self.assertEqual(page.status_code, 200)
        self.assertIn(number, page.text)
        self.assertIn(second_number, page.text)
        self.assertNotIn(their_number, page.text)
        self.assertRegex(page.text, r'2 sales</th><th class="n">\w+ 120\.00<')
        self.assertIn(
            number, client.get(BASE + 'sales', query_string={'q': number}).text
        )
        self.assertNotIn(
            second_number, client.get(BASE + 'sales', query_string={'q': number}).text
        )
        by_meter = client.get(BASE + 'sales', query_string={'q': self.env.meter}).text
        self.assertIn(second_number, by_meter)
        yesterday = (dt.date.today() - dt.timedelta(days=2)).isoformat()
        old = client.get(
            BASE + 'sales', query_string={'from': yesterday, 'to': yesterday}
        )
        self.assertIn('No sale in this period', old.text)
        bad = client.get(BASE + 'sales', query_string={'from': '2026-13-01'})
        self.assertEqual(bad.status_code, 400)

        page = client.get(f'{BASE}sales/{first}')
        self.assertEqual(page.status_code, 200)
        self.assertIn(number, page.text)
        self.assertIn(self.env.meter, page.text)
        self.assertIn('*' * 16 + token[-4:], page.text)
        self.assertNotIn(token, page.text)

        # Another vendor's receipt by URL, and one that does not exist:
        # the same 404, nothing of theirs shown.
        refused = client.get(f'{BASE}sales/{theirs}')
        missing = client.get(f'{BASE}sales/999999999')
        self.assertEqual(refused.status_code, 404)
        self.assertEqual(missing.status_code, 404)
        self.assertEqual(refused.text, missing.text)
        self.assertNotIn(their_number, refused.text)

    def test_statement_pdf_and_xlsx(self):
        seller = self.new_seller()
        status, _ = self.post(credit_vend(seller, self.env.meter, '100.00'))
        self.assertEqual(status, 200)
        # The statement is the vendor's float account: the sale once booked
        # (the cron's booking; the dashboard counts it at once).
        committed(lambda: Pool().get('prepaid.vend').book_pending())
        client = self.logged_in(add_portal_user(seller, 'operator'))
        today = dt.date.today().isoformat()
        period = {'from': today, 'to': today}

        pdf = client.get(BASE + 'statement', query_string={**period, 'format': 'pdf'})
        self.assertEqual(pdf.status_code, 200)
        self.assertEqual(pdf.mimetype, 'application/pdf')
        self.assertIn(
            'attachment; filename="statement-', pdf.headers['Content-Disposition']
        )
        text = '\n'.join(
            p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf.data)).pages
        )
        self.assertIn('Sales', text)
        self.assertIn('400.00', text)  # the closing balance

        xlsx = client.get(BASE + 'statement', query_string={**period, 'format': 'xlsx'})
        self.assertEqual(xlsx.status_code, 200)
        book = openpyxl.load_workbook(io.BytesIO(xlsx.data))
        cells = [c for row in book.active.iter_rows(values_only=True) for c in row]
        self.assertIn(Decimal('-100.00'), [Decimal(str(c)) for c in cells if _num(c)])

        for query in [
            {**period, 'format': 'csv'},
            {'from': today, 'to': '2000-01-01'},
            {'from': '2020-01-01', 'to': today},  # longer than a year
        ]:
            with self.subTest(query=query):
                response = client.get(BASE + 'statement', query_string=query)
                self.assertEqual(response.status_code, 400)


def _num(value) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


class PortalAccessTestCase(unittest.TestCase):
    "The portal links over JSON-RPC, as hostile staff"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        from trytond.tests.test_tryton import activate_module

        activate_module('prepaid_vendor_portal')

    @with_transaction()
    def test_staff_access(self):
        "The accountant reads the links but may not create one; an operator none"
        Link = Pool().get('prepaid.vendor.web_user')
        with acting_as(create_user('portal_acc', 'accountant')):
            self.assertEqual(Link.search([]), [])
            with self.assertRaises(AccessError):
                Link.create([{'role': 'administrator'}])
        with acting_as(create_user('portal_op', 'operator')):
            with self.assertRaises(AccessError):
                Link.search([])

    def test_scope_refuses_unknown_models(self):
        "The gate knows its models: another one is an error, not unfiltered"
        with self.assertRaises(KeyError):
            VendorScope(None).search('prepaid.vend', [])
