"""Peak memory and time of loading, splitting and one pass over the training batches of
MovieLens-1M under the paper's protocol, at history length T (no model, no training).

    python bench/split_memory.py [CHECKOUT] [T] [DATA_PATH]

CHECKOUT is the recbole-umi source folder measured (default: this one), so that two
versions can be measured side by side; DATA_PATH holds ml-1m/ (default ../shared/data).
"""

import resource
import sys
import time
from pathlib import Path

checkout = sys.argv[1] if len(sys.argv) > 1 else str(Path(__file__).resolve().parent.parent)
length = int(sys.argv[2]) if len(sys.argv) > 2 else 50
data_path = sys.argv[3] if len(sys.argv) > 3 else str(Path(__file__).resolve().parent.parent.parent / "shared" / "data")
sys.path.insert(0, checkout)

from recbole_umi.config import Config  # noqa: E402
from recbole_umi.data import create_dataset, data_preparation  # noqa: E402

started = time.perf_counter()
config = Config("UMI", "ml-1m", config_dict={"data_path": data_path, "state": "ERROR", "MAX_ITEM_LIST_LENGTH": length})
dataset = create_dataset(config)
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
train, valid, test = data_preparation(config, dataset)
rows = sum(len(batch) for batch in train)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{checkout}: T {length}, {rows} training rows, peak {peak // 1024} MiB "
      f"({loaded // 1024} MiB after loading), {time.perf_counter() - started:.1f} s")
