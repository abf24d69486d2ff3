"""``python -m acs_identity ARGS`` runs the bundled ``acs-identity`` binary with ARGS."""

import os
import sys

from ._service import binary_path


def main() -> None:
    binary = str(binary_path())
    os.execv(binary, [binary, *sys.argv[1:]])


if __name__ == "__main__":
    main()
