"""Write the generated XSDs and WSDL into ``schema/`` (or a folder given).

python -m trytond.modules.prepaid_vendor_portal.xmlvend.generate [FOLDER]
"""

from __future__ import annotations

import sys
from pathlib import Path

from .schema import generated_files


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path(__file__).with_name("schema")
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in generated_files().items():
        (folder / name).write_bytes(content)
        print(folder / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
