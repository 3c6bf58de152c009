"""Generic Tryton module checks for prepaid_sts (views, access, fields, XML),
and Tryton's company checks (every model with a company has its global
company rule)."""

from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase


class PrepaidStsTestCase(CompanyTestMixin, ModuleTestCase):
    "Test the prepaid_sts module"

    module = "prepaid_sts"


del ModuleTestCase
