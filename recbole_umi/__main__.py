"""``python -m recbole_umi``: the command line of run_recbole_umi.py, for an installed package.

    python -m recbole_umi --model=UMI --dataset=ml-100k
"""

import sys

from recbole_umi.command_line import console_main

if __name__ == "__main__":
    sys.exit(console_main())
