"""Fixtures shared by the prepaid_sts database tests (public STS test keys).

Key material comes from the public vectors of tests/data/sts_vectors.json
(STS 531-1-07 Ed 2.2 CTSA01/CTSA05 as transcribed by
mohamedkhamis/STSCompliancePOS, and NectarAPI/tokens-service for DKGA02; see
docs/sts.md section 3).
"""

from __future__ import annotations

import os
from decimal import Decimal

from trytond.modules.company.tests import create_company
from trytond.modules.prepaid_sts import masterkey
from trytond.modules.prepaid_sts.meter import TokenRequest
from trytond.modules.prepaid_vending.tests import staff
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module
from trytond.transaction import Transaction, without_check_access

#: DKGA04 160-bit test vending key (STS 531-1-07 CTSA01).
VK_DKGA04 = "abababababababab949494949494949401234567"
#: DKGA02 64-bit test vending key (STS 531-1-0-02 CTSA01, NectarAPI tests).
VK_DKGA02 = "abababababababab"
PAN = "600727000000000009"


def set_master_key() -> str | None:
    """Install a fresh master key in the environment; return the previous one."""
    previous = os.environ.get(masterkey.ENV_NAME)
    os.environ[masterkey.ENV_NAME] = masterkey.generate_master_key()
    return previous


def restore_master_key(previous: str | None) -> None:
    if previous is None:
        os.environ.pop(masterkey.ENV_NAME, None)
    else:
        os.environ[masterkey.ENV_NAME] = previous


class StsTestMixin:
    """Set-up of a test case on the prepaid_sts module: a fresh master key for
    the class (the vending keys are encrypted with it), the environment's
    previous one restored after it.  A mixin, not a TestCase, so that the test
    files importing it do not collect it as a test class of their own."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._previous_master_key = set_master_key()
        activate_module("prepaid_sts")

    @classmethod
    def tearDownClass(cls):
        restore_master_key(cls._previous_master_key)
        super().tearDownClass()


def credit(kwh: str) -> TokenRequest:
    "A credit token request of kwh (a decimal string)"
    return TokenRequest("credit", 0, 0, amount=Decimal(kwh), description="credit")


def utility(name: str = "Test Utility"):
    """The context's company, else the company of that name (created with a
    shared currency on first use): a test's utility."""
    pool = Pool()
    Company = pool.get("company.company")
    Currency = pool.get("currency.currency")
    User = pool.get("res.user")
    company_id = Transaction().context.get("company")
    if company_id is not None and name == "Test Utility":
        return Company(company_id)
    # Set-up, not the behaviour under test: whoever the test acts as.
    with without_check_access():
        companies = Company.search([("party.name", "=", name)], limit=1)
        if companies:
            return companies[0]
        currencies = Currency.search([], limit=1)
        company = create_company(name, currency=currencies[0] if currencies else None)
        # The administrator the tests run as works for every test utility
        # (the record rules show a user the companies they work for).
        (admin,) = User.search([("login", "=", "admin")])
        User.write([admin], {"companies": [("add", [company.id])]})
        if not admin.company:
            User.write([admin], {"company": company.id})
        return company


def create_user(login: str, *groups, company=None):
    "A staff user (staff.create_user) working for company (the test's utility)"
    return staff.create_user(login, *groups, company=company or utility())


def create_vending_key(
    sgc="201457",
    krn=1,
    base_date="14",
    dkga="04",
    key=VK_DKGA04,
    key_type="2",
    company=None,
):
    VendingKey = Pool().get("prepaid.sts.vending_key")
    (record,) = VendingKey.create(
        [
            {
                "company": (company or utility()).id,
                "name": f"Test VK {sgc}/{krn}/{base_date}",
                "sgc": sgc,
                "krn": krn,
                "key_type": key_type,
                "base_date": base_date,
                "dkga": dkga,
                "ea": "07",
                "key": key,
            }
        ]
    )
    return record


def create_meter(
    serial="M1",
    sgc="201457",
    krn=1,
    ti="01",
    base_date="14",
    pan=PAN,
    company=None,
):
    Meter = Pool().get("prepaid.meter")
    (meter,) = Meter.create(
        [
            {
                "company": (company or utility()).id,
                "serial": serial,
                "kind": "sts_keypad",
                "sts_pan": pan,
                "sts_sgc": sgc,
                "sts_krn": krn,
                "sts_tariff_index": ti,
                "sts_key_type": "2",
                "sts_base_date": base_date,
                "sts_ea": "07",
            }
        ]
    )
    return meter
