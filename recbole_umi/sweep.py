"""``python -m recbole_umi.sweep``: one setting swept over values (the paper's Figure 2); the command of
:mod:`recbole_umi.experiments.sweep` under the path README and the scripts give it."""

import sys

from recbole_umi.experiments.sweep import main

if __name__ == "__main__":
    from recbole_umi.cli import command

    sys.exit(command(main, prog="python -m recbole_umi.sweep", resumable=True))
