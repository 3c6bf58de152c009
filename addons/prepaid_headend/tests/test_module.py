from trytond.tests.test_tryton import ModuleTestCase


class PrepaidHeadendTestCase(ModuleTestCase):
    "Test the prepaid_headend module"

    module = "prepaid_headend"


del ModuleTestCase
