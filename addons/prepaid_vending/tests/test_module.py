from trytond.modules.company.tests import CompanyTestMixin
from trytond.tests.test_tryton import ModuleTestCase


class PrepaidVendingTestCase(CompanyTestMixin, ModuleTestCase):
    "Test the prepaid_vending module"

    module = "prepaid_vending"

    @property
    def _skip_company_rule(self):
        # Customer categories may be shared (no company, like the parties
        # they classify): their rule also shows those.
        return super()._skip_company_rule | {('prepaid.customer.category', 'company')}


del ModuleTestCase
