"""A wheel without the files under some folders, for bench/gpu_prepare.sh: RecBole's wheel
carries its example datasets (1.7 MB of its 2.1 MB), which the device machine, training
ml-1m from .device-data, does not read, and every megabyte that travels is taken from the
room results/ has under the device's limit. The wheel's RECORD loses the lines of the files
left out, so that it lists exactly what the wheel holds; a wheel without such files is left
as it is.

    python bench/slim_wheel.py WHEEL PREFIX [PREFIX ...]   # e.g. recbole/dataset_example/
"""

from __future__ import annotations

import argparse
import os
import zipfile
from pathlib import Path


def slim_wheel(wheel, prefixes) -> int:
    """Rewrites ``wheel`` in place without its members whose names start with one of
    ``prefixes`` (and their RECORD lines); the number of members left out."""
    wheel = Path(wheel)
    prefixes = tuple(prefixes)
    with zipfile.ZipFile(wheel) as source:
        members = source.infolist()
        dropped = sum(member.filename.startswith(prefixes) for member in members)
        if not dropped:
            return 0
        slim = wheel.with_name(wheel.name + ".slim")
        with zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as target:
            for member in members:
                if member.filename.startswith(prefixes):
                    continue
                data = source.read(member)
                if member.filename.endswith(".dist-info/RECORD"):
                    data = b"".join(line for line in data.splitlines(keepends=True)
                                    if not line.decode().startswith(prefixes))
                target.writestr(member, data)
    os.replace(slim, wheel)
    return dropped


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheel")
    parser.add_argument("prefixes", nargs="+", help="leave out the members whose names start with one of these")
    args = parser.parse_args(argv)
    before = os.path.getsize(args.wheel)
    dropped = slim_wheel(args.wheel, args.prefixes)
    print(f"{args.wheel}: {dropped} files left out, {before} -> {os.path.getsize(args.wheel)} bytes")
    return dropped


if __name__ == "__main__":
    main()
