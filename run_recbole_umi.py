"""Command line: train and evaluate a recbole-umi or RecBole model.

    python run_recbole_umi.py                          # UMI on the embedded ml-100k
    python run_recbole_umi.py --model=MIND --dataset=ml-1m --harder_negatives=True
    python run_recbole_umi.py --model=SASRec --config_files=a.yaml,b.yaml
"""

import sys

from recbole_umi.command_line import console_main

if __name__ == "__main__":
    sys.exit(console_main())
