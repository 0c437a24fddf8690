"""``python -m recbole_umi.tune``: resumable hyper-parameter search through RecBole's HyperTuning; the command of
:mod:`recbole_umi.experiments.tune` under the path README and the scripts give it."""

import sys

from recbole_umi.experiments.tune import main

if __name__ == "__main__":
    from recbole_umi.cli import command

    sys.exit(command(main, prog="python -m recbole_umi.tune", resumable=True))
