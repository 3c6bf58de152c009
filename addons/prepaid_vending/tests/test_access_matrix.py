"""The access of every role to the vending module's models, as written down
in access_matrix.py; prepaid_headend checks the whole installation."""

import unittest

from .access_matrix import AccessMatrixChecks


class AccessMatrixTestCase(AccessMatrixChecks, unittest.TestCase):
    module = 'prepaid_vending'
