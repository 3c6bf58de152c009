from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase


class PrepaidHeadendTestCase(CompanyTestMixin, ModuleTestCase):
    "Test the prepaid_headend module"

    module = "prepaid_headend"

    @property
    def _skip_company_rule(self):
        # Customer categories (extended here) may be shared, with no company,
        # like the parties they classify: prepaid_vending's rule shows those.
        return super()._skip_company_rule | {('prepaid.customer.category', 'company')}


del ModuleTestCase
