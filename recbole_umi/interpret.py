"""``python -m recbole_umi.interpret``: UMI's UGANet, routing and Eq 7 field weights per user and by category; the command of
:mod:`recbole_umi.experiments.interpret` under the path README and the scripts give it."""

import sys

from recbole_umi.experiments.interpret import main

if __name__ == "__main__":
    from recbole_umi.cli import command

    sys.exit(command(main, prog="python -m recbole_umi.interpret"))
