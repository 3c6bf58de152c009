"""Receipt PDFs read back as text (pypdf, layout mode), on the three papers:
80 mm and 58 mm roll and A4.  Each defect once seen on a printed receipt has
its check: labels broken inside words ("Receip/t", "Operat/or"), block price
and amount on different VAT bases ("54.3 kWh @ 1.60 ... 100.00" with the
amount including VAT), no "Tax invoice" and VAT number, an unexplained line
("54.3 kWh 54.3"), a tariff name cut, a long customer name squeezing the
labels, and no word on the delivery of remote credit."""

import io
import re
import unittest
from decimal import Decimal as D
from unittest.mock import patch

import pypdf
from trytond.pool import Pool
from trytond.tests.test_tryton import activate_module, with_transaction

from ..receipt import REPRINT_MARK, receipt_data
from .test_receipt import GROUPED, _fixed_token
from .vend_fixtures import open_session, with_vending

LONG_NAME = (
    'Nomvuyiseko Thandiwe Mokoena-Van der Merwe Family Trust for the '
    'Benefit of the Jacaranda Street Residents'
)
LONG_TARIFF = 'Domestic Inclining Block Tariff for Prepaid Low-Income Households'
VAT_NUMBER = '0001339050'  # a valid South African TIN (python-stdnum)
PAPERS = ('80', '58', 'a4')


def pdf_text(content: bytes) -> str:
    "The text of a PDF as laid out on the page (one line per printed line)"
    reader = pypdf.PdfReader(io.BytesIO(content))
    return '\n'.join(p.extract_text(extraction_mode='layout') for p in reader.pages)


def words(text: str) -> list[str]:
    return re.findall(r'\S+', text)


class ReceiptPdfTextTestCase(unittest.TestCase):
    "What the printed receipt says, read back from the PDF"

    @classmethod
    def setUpClass(cls):
        activate_module('prepaid_vending')

    def receipts(self, env, vend) -> dict[str, str]:
        "The text of the receipt PDF on each paper (Print > Receipt: reprints)"
        Report = Pool().get('prepaid.vend.receipt', type='report')
        texts = {}
        for paper in PAPERS:
            ext, content, _, _ = Report.execute(
                [vend.id], {'model': 'prepaid.vend', 'paper': paper}
            )
            self.assertEqual(ext, 'pdf')
            texts[paper] = pdf_text(content)
        return texts

    @with_transaction()
    def test_receipt_text_on_three_papers(self):
        pool = Pool()
        Vend = pool.get('prepaid.vend')
        Identifier = pool.get('party.identifier')
        with with_vending() as env:
            Identifier(party=env.company.party, type='za_tin', code=VAT_NUMBER).save()
            env.customer.name = LONG_NAME
            env.customer.save()
            env.tariff.name = LONG_TARIFF
            env.tariff.save()
            open_session(env)
            with patch.object(Vend, 'issue_credit_tokens', _fixed_token):
                vend = Vend.vend(env.meter, D('300.00'), 'cash', env.sales_point, 'p1')
            texts = self.receipts(env, vend)
            labels = [row.label for row in receipt_data(vend).details] + [
                'Tender',
                'Fixed charge',
                'Total VAT',
                'Energy purchased',
                'Delivery',
            ]
            label_words = {w for label in labels for w in label.split()}
            for paper, text in texts.items():
                with self.subTest(paper=paper):
                    self.check_receipt(text, labels, label_words)

    def check_receipt(self, text, labels, label_words):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        # Labels whole, at the start of their line, never broken in a word.
        for label in labels:
            self.assertTrue(
                any(re.match(rf'{re.escape(label)}(\s|$)', x) for x in lines),
                f'{label!r} not at the start of a line:\n{text}',
            )
        fragments = [
            t
            for t in words(text)
            if t not in label_words
            and len(t) >= 2
            and any(w.startswith(t) and w != t for w in label_words)
        ]
        self.assertEqual(fragments, [], text)
        # Long values wrap between words, never cut.
        flowing = re.sub(r'-\s+', '-', ' '.join(words(text)))
        self.assertIn(LONG_NAME, flowing)
        self.assertIn(LONG_TARIFF, flowing)
        # A tax invoice with the utility's VAT number.
        self.assertIn('TAX INVOICE', lines)
        self.assertTrue(any(re.match(rf'VAT No\.\s+{VAT_NUMBER}$', x) for x in lines))
        # Block price and amount on one VAT basis: kWh x price is the amount,
        # but for the money of the fraction of 0.1 kWh not issued.
        blocks = [
            re.match(r'Block \d+: ([\d.]+) kWh @ ([\d.]+)\s+([\d.]+)$', x)
            for x in lines
            if x.startswith('Block ')
        ]
        self.assertEqual(len(blocks), 2, text)
        for match in blocks:
            kwh, price, amount = (D(g) for g in match.groups())
            self.assertGreaterEqual(amount, (kwh * price).quantize(D('0.01')))
            self.assertLess(amount - kwh * price, price * D('0.1') + D('0.01'))
        self.assertIn('Prices and amounts include VAT.', lines)
        # No unexplained line: every quantity says what it is.
        for line in lines:
            self.assertNotRegex(line, r'^[\d.]+ kWh\s+[\d.]+$')
        token_at = lines.index('Credit token: 144.2 kWh')
        self.assertEqual(lines[token_at + 1], GROUPED)
        # The delivery of the smart meter's remote credit.
        self.assertIn('Delivery pending: queued for the meter', flowing)
        self.assertEqual(lines[0], REPRINT_MARK)
