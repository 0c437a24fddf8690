"""The checkpoint file: plain data written by ``torch.save`` with a SHA-256 digest of its
content, read back with ``torch.load(weights_only=True)`` and checked (format, version,
digest, entries). A file that weights-only loading refuses is told apart by the globals its
pickle names, read with :mod:`pickletools`, which runs nothing.

What a checkpoint holds, and why this format: :mod:`recbole_umi.checkpoint`. Imports torch,
not RecBole.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import pickletools
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from recbole_umi.plain import plain_data

__all__ = ["FORMAT", "VERSION", "CheckpointError", "last_checkpoint_path", "write_checkpoint", "read_checkpoint",
           "error_summary"]

FORMAT = "recbole-umi checkpoint"
VERSION = 1

# Entries every checkpoint of this version has (a damaged dict may lack some).
_REQUIRED = {
    "kind", "model", "dataset", "config", "ids", "epoch", "cur_step", "best_valid_score",
    "best_valid_result", "state_dict", "other_parameter", "optimizer", "rng", "best_file",
}


class CheckpointError(ValueError):
    """A checkpoint file cannot be used: missing, damaged or truncated, refused (it holds
    pickled objects, e.g. RecBole's own format), of another format or version, or made for
    another model or other data.

    Attributes:
        path: the file.
        problem: what is wrong with it.
    """

    def __init__(self, path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"checkpoint {self.path}: {problem}")


def last_checkpoint_path(best_path) -> Path:
    """``<dir>/<model>-<time>-last.pth`` for the best checkpoint ``<dir>/<model>-<time>.pth``."""
    best_path = Path(best_path)
    return best_path.with_name(f"{best_path.stem}-last{best_path.suffix}")


def _feed(digest, value: Any) -> None:
    """Hash ``value`` unambiguously: type tags, lengths, dtypes and shapes, then the bytes."""
    if isinstance(value, torch.Tensor):
        digest.update(f"T{value.dtype}{tuple(value.shape)};".encode())
        flat = torch.empty(value.numel(), dtype=value.dtype)  # stride 1 whatever the strides read
        flat.copy_(value.reshape(-1))
        digest.update(flat.view(torch.uint8).numpy())
    elif isinstance(value, dict):
        digest.update(f"D{len(value)};".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)};".encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, str):
        encoded = value.encode("utf-8", "surrogatepass")
        digest.update(f"S{len(encoded)};".encode() + encoded)
    else:  # int, float, bool, None: repr is exact and tagged by the type's name
        digest.update(f"{type(value).__name__}:{value!r};".encode())


def _digest(content: dict) -> str:
    digest = hashlib.sha256()
    _feed(digest, {key: value for key, value in content.items() if key != "digest"})
    return digest.hexdigest()


def write_checkpoint(path, content: dict) -> Path:
    """Write ``content`` (plain data; ``format``, ``version`` and ``digest`` are added).

    The file is written beside ``path`` and then renamed over it, so that a run killed while
    saving leaves the previous checkpoint, never a truncated one.
    """
    path = Path(path)
    plain = plain_data({"format": FORMAT, "version": VERSION, **content}, tensors=True, where="checkpoint")
    plain["digest"] = _digest(plain)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:  # a file object: the zip's folder is "archive/"
            torch.save(plain, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def read_checkpoint(path) -> dict:
    """The content of the checkpoint ``path``, read with ``weights_only=True`` and checked
    (format, version, digest, entries); :class:`CheckpointError` for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    try:
        with warnings.catch_warnings():
            # damaged files make torch warn about odd pickle protocols before it fails
            warnings.simplefilter("ignore")
            content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise CheckpointError(path, _refusal(path, error)) from None
    except OSError as error:
        raise CheckpointError(path, f"cannot be read: {error.strerror or error}") from None
    except Exception as error:  # noqa: BLE001 -- zip, pickle and decoding errors of a damaged file
        raise CheckpointError(path, f"cannot be read: the file is damaged or truncated ({error_summary(error)})") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT:
        raise CheckpointError(
            path, f"not a recbole-umi checkpoint (no format entry {FORMAT!r}): a bare state dict, "
            "or another program's file"
        )
    if content.get("version") != VERSION:
        raise CheckpointError(path, f"format version {content.get('version')!r}; this recbole-umi reads version {VERSION}")
    try:
        intact = content.get("digest") == _digest(content)
    except Exception:  # noqa: BLE001 -- tensors of impossible layouts in a damaged file
        intact = False
    if not intact:
        raise CheckpointError(path, "damaged: its content does not match the SHA-256 digest written with it")
    missing = sorted(_REQUIRED - content.keys())
    if missing:
        raise CheckpointError(path, f"incomplete: no {', '.join(missing)}")
    return content


def error_summary(error: BaseException, n_lines: int = 1) -> str:
    """``Type: first sentence`` of an error (of its first ``n_lines`` lines)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()][:n_lines]
    text = " ".join(line.split(". ")[0].rstrip(".") for line in lines)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _refusal(path: Path, error: pickle.UnpicklingError) -> str:
    """Why weights-only loading refused ``path``, told from the globals its pickle names."""
    names = _pickled_globals(path)
    if any(name.startswith(("recbole.", "recbole_umi.")) for name in names):
        return (
            "refused: a checkpoint in RecBole's own format, which pickles RecBole's Config object "
            "(so did recbole-umi before its own format); "
            "reading it would run code stored in the file, so it is read weights-only and fails. "
            "If the file comes from a source you trust, load it yourself and convert it once: "
            f"recbole_umi.checkpoint.convert_recbole_checkpoint(torch.load({str(path)!r}, map_location='cpu', "
            "weights_only=False), "
            "'converted.pth'), then use the converted file"
        )
    foreign = sorted(name for name in names if not name.startswith(("torch.", "collections.")))
    if foreign:
        return (
            f"refused: it holds pickled Python objects ({', '.join(foreign)}) that only running code "
            "from the file could rebuild; recbole-umi checkpoints hold tensors and plain values and "
            "are never read with weights_only=False"
        )
    reason = str(error).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
    return f"cannot be read: the file is damaged, or holds objects weights-only loading refuses ({reason})"


_STRING_OPCODES = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}


def _pickled_globals(path: Path) -> set[str]:
    """``module.name`` of each global the pickle inside the torch zip file ``path`` names.

    Read with :mod:`pickletools`, which decodes opcodes and runs nothing; best effort (for
    error messages only): what a damaged stream hides is left out.
    """
    found: set[str] = set()
    try:
        with zipfile.ZipFile(path) as archive:
            stream = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
        strings: list[str] = []
        memo: dict[int, Any] = {}
        top = None  # the string on top of the stack, if the last push was one
        for opcode, arg, _ in pickletools.genops(stream):
            name = opcode.name
            if name in _STRING_OPCODES:
                top = arg if isinstance(arg, str) else arg.decode("latin-1")
                strings.append(top)
            elif name == "MEMOIZE":
                memo[len(memo)] = top
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = top
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                top = memo.get(arg)
                if top is not None:
                    strings.append(top)
            elif name == "GLOBAL":
                found.add(arg.replace(" ", "."))
            elif name == "STACK_GLOBAL" and len(strings) >= 2:
                found.add(f"{strings[-2]}.{strings[-1]}")
            elif name != "FRAME":
                top = None
    except Exception:  # noqa: BLE001 -- a damaged stream: report what was found before it
        pass
    return found
