"""Print one closing line adding up the pytest JUnit reports of a test run."""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(paths: list[str]) -> None:
    passed = failed = skipped = 0
    for path in map(Path, paths):
        if not path.exists():
            continue
        for suite in ET.parse(path).getroot().iter('testsuite'):
            tests = int(suite.get('tests', 0))
            bad = int(suite.get('failures', 0)) + int(suite.get('errors', 0))
            skip = int(suite.get('skipped', 0))
            failed += bad
            skipped += skip
            passed += tests - bad - skip
    print(f'total: {passed} passed, {failed} failed, {skipped} skipped')


if __name__ == '__main__':
    main(sys.argv[1:])
