"""``python -m recbole_umi.noise``: clean against noisy profiles (the paper's Table 5); the command of
:mod:`recbole_umi.experiments.noise` under the path README and the scripts give it."""

import sys

from recbole_umi.experiments.noise import main

if __name__ == "__main__":
    from recbole_umi.cli import command

    sys.exit(command(main, prog="python -m recbole_umi.noise", resumable=True))
