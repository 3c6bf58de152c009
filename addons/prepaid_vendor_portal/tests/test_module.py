"""Generic Tryton module checks for prepaid_vendor_portal (views, access,
fields, XML), and Tryton's company checks (every model with a company has
its global company rule)."""

from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase


class PrepaidVendorPortalTestCase(CompanyTestMixin, ModuleTestCase):
    "Test the prepaid_vendor_portal module"

    module = "prepaid_vendor_portal"


del ModuleTestCase
