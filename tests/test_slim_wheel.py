"""bench/slim_wheel.py: a wheel without the files under some folders installs with pip and
holds everything else, its RECORD listing exactly what is left."""

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from slim_wheel import slim_wheel  # noqa: E402

FILES = {
    "pkg/__init__.py": b"ANSWER = 42\n",
    "pkg/dataset_example/toy/toy.inter": b"user_id:token\titem_id:token\n1\t2\n" * 50,
    "pkg/dataset_example/toy/toy.item": b"item_id:token\n2\n",
    "pkg-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: pkg\nVersion: 1.0\n",
    "pkg-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}\n"


def make_wheel(folder: Path) -> Path:
    wheel = folder / "pkg-1.0-py3-none-any.whl"
    record = "".join(record_line(name, data) for name, data in FILES.items()) + "pkg-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in FILES.items():
            archive.writestr(name, data)
        archive.writestr("pkg-1.0.dist-info/RECORD", record)
    return wheel


def test_the_slim_wheel_installs_without_the_folder_and_records_what_is_left(tmp_path):
    wheel = make_wheel(tmp_path)
    assert slim_wheel(wheel, ["pkg/dataset_example/"]) == 2
    with zipfile.ZipFile(wheel) as archive:
        assert sorted(archive.namelist()) == ["pkg-1.0.dist-info/METADATA", "pkg-1.0.dist-info/RECORD",
                                              "pkg-1.0.dist-info/WHEEL", "pkg/__init__.py"]
        record = archive.read("pkg-1.0.dist-info/RECORD").decode()
    kept = ["pkg/__init__.py", "pkg-1.0.dist-info/METADATA", "pkg-1.0.dist-info/WHEEL"]
    assert record == "".join(record_line(name, FILES[name]) for name in kept) + "pkg-1.0.dist-info/RECORD,,\n"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                           "--target", str(tmp_path / "site"), str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "site" / "pkg" / "__init__.py").read_bytes() == FILES["pkg/__init__.py"]
    assert not (tmp_path / "site" / "pkg" / "dataset_example").exists()


def test_a_wheel_without_such_files_is_left_as_it_is(tmp_path):
    wheel = make_wheel(tmp_path)
    slim_wheel(wheel, ["pkg/dataset_example/"])
    slimmed = wheel.read_bytes()
    assert slim_wheel(wheel, ["pkg/dataset_example/"]) == 0
    assert wheel.read_bytes() == slimmed
