"""``python -m recbole_umi.compare``: side-by-side runs over models and seeds, paper-layout tables and their tests; the command of
:mod:`recbole_umi.experiments.compare` under the path README and the scripts give it."""

import sys

from recbole_umi.experiments.compare import main

if __name__ == "__main__":
    from recbole_umi.cli import command

    sys.exit(command(main, prog="python -m recbole_umi.compare", resumable=True))
