"""Weights for the learned generators: where they come from, fetching them, loading them safely.

A weights *source* is either a local path (a file, or a folder holding the expected file name) or a
Hugging Face hub file ``hf:OWNER/REPO[@REVISION]/FILE``, resolved by ``huggingface_hub`` into its
standard cache (``HF_HUB_CACHE``; ``HF_HUB_OFFLINE=1`` makes it look only there). Known default
files are registered below with the revision they are pinned to; generators read them from the
cache only, so the only network access is ``fetch_weights`` and an explicit ``hf:`` source.

Loading never runs code from a file: pickles go through ``torch.load(weights_only=True)``,
``.safetensors`` through ``safetensors``. Every problem is an ``InputError`` (one line, exit 2).
``huggingface_hub`` and ``safetensors`` are imported only when needed.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .contract import sha256_file
from .errors import InputError

if TYPE_CHECKING:
    from torch import Tensor

# progress(fraction in [0, 1], message), as generators report theirs.
ProgressFn = Callable[[float, str], None]

HUB_PREFIX = "hf:"
_COMMIT_HASH = re.compile(r"[0-9a-f]{40}")

# The commit of huggingface.co/JTRNEO/RS3DAda that the RS3DAda defaults should be pinned to. It could
# not be looked up from the machines this was written on, so this is the branch name until someone
# with network access replaces it by the 40-hex commit (huggingface_hub.model_info("JTRNEO/RS3DAda").sha).
# Until then ``list_weights`` reports the files as unpinned and the height file's published sha256
# (below) is what pins its content.
RS3DADA_REVISION_UNPINNED = "main"

# The commit of huggingface.co/qian43/Sat3DGen the Sat3DGen defaults are pinned to, and the sha256 of its
# two files there. Not looked up from the hub (no network where this was written): taken from a public
# third-party project that pins and checksums the same download (akshat131211/satground-structural-research,
# reports/asset-lock.json). The sizes were not published there, so only the sha256 is checked.
SAT3DGEN_REVISION = "fa0ed75aff7f42dcd749764787c0184fcab0b12c"
SAT3DGEN_LICENCE = ("MIT (Sat3DGen code and weights); the bundled DINOv3 ViT-L/16 backbone weights are under "
                    "Meta's DINOv3 License")


@dataclass(frozen=True)
class KnownWeights:
    """A published weights file the project knows by name. ``size_bytes`` and ``sha256`` are
    the published file's, where known (``None``: not known, not checked)."""

    name: str
    repo: str
    revision: str
    filename: str
    size_bytes: int | None
    licence: str
    group: str
    sha256: str | None = None

    @property
    def source(self) -> str:
        return f"{HUB_PREFIX}{self.repo}@{self.revision}/{self.filename}"

    @property
    def pinned(self) -> bool:
        return bool(_COMMIT_HASH.fullmatch(self.revision))


KNOWN_WEIGHTS: dict[str, KnownWeights] = {w.name: w for w in (
    # SynRS3D's RS3DAda (MIT). Both files hold both heads (height regression + 8-class land cover);
    # upstream reads the height from the first and the classes from the second. The height file's size
    # and sha256 are those the hub publishes for it (its LFS object id).
    KnownWeights("rs3dada-height", "JTRNEO/RS3DAda", RS3DADA_REVISION_UNPINNED, "RS3DAda_vitl_DPT_height.pth",
                 1_466_477_172, "MIT", "rs3dada",
                 "6c1c6843c3583604227896583acfee621dd841cbadd49c023d3d32bcc4b3565b"),
    KnownWeights("rs3dada-seg", "JTRNEO/RS3DAda", RS3DADA_REVISION_UNPINNED, "RS3DAda_vitl_DPT_segmentation.pth",
                 None, "MIT", "rs3dada"),
    # Sat3DGen (ICLR 2026): the diffusers-style config.json (architecture options) and the weights, which
    # hold the DINOv3 backbone, the plane decoder, the density/colour MLP and the sky and super-resolution
    # modules (the last two unused by SatForge).
    KnownWeights("sat3dgen-config", "qian43/Sat3DGen", SAT3DGEN_REVISION, "config.json", None, "MIT", "sat3dgen",
                 "4783fb3278e0f397c041c84e654c39c185a4f523b445410058913241932145d2"),
    KnownWeights("sat3dgen-weights", "qian43/Sat3DGen", SAT3DGEN_REVISION, "diffusion_pytorch_model.safetensors",
                 None, SAT3DGEN_LICENCE, "sat3dgen",
                 "8770de3ea777d586160036a78d29bd8f1cc2ae2d1d9900f01945c6c8f4377846"),
)}


@dataclass(frozen=True)
class HubFile:
    """One file of a hub model repository; ``revision`` None means the default branch."""

    repo: str
    filename: str
    revision: str | None = None

    def __str__(self) -> str:
        at = f"@{self.revision}" if self.revision else ""
        return f"{HUB_PREFIX}{self.repo}{at}/{self.filename}"


def parse_source(source: str, subject: str) -> Path | HubFile:
    """A local path, or the hub file that ``hf:OWNER/REPO[@REVISION]/FILE`` names."""
    if not source.startswith(HUB_PREFIX):
        return Path(source).expanduser()
    parts = source[len(HUB_PREFIX):].split("/", 2)
    if len(parts) == 3:
        owner, repo_at, filename = parts
        repo, at, revision = repo_at.partition("@")
        if owner and repo and filename and (revision or not at):
            return HubFile(f"{owner}/{repo}", filename, revision or None)
    raise InputError(subject, f"{source!r} is not a hub file", "write hf:OWNER/REPO[@REVISION]/FILE")


def known_weights(name: str) -> list[KnownWeights]:
    """The files a name stands for: one registered name, or a group (``rs3dada``: all of its files)."""
    if name in KNOWN_WEIGHTS:
        return [KNOWN_WEIGHTS[name]]
    group = [w for w in KNOWN_WEIGHTS.values() if w.group == name]
    if not group:
        names = sorted({*KNOWN_WEIGHTS, *(w.group for w in KNOWN_WEIGHTS.values())})
        raise InputError("weights", f"unknown weights {name!r}", f"use one of: {', '.join(names)}")
    return group


def resolve_source(source: str, subject: str, default_filename: str | None = None) -> Path:
    """The local file a source names, downloading an ``hf:`` file into the hub cache if needed.

    A folder must hold ``default_filename``. ``subject`` (the option that gave the source) is what
    error messages name.
    """
    target = parse_source(source, subject)
    if isinstance(target, HubFile):
        fix = f"run it once on a connected machine without HF_HUB_OFFLINE, or pass {subject} FILE"
        return _hub_file(target, subject, local_only=False, offline_fix=fix)
    if target.is_dir() and default_filename:
        target = target / default_filename
    if not target.is_file():
        raise InputError(subject, f"weights file {target} does not exist",
                         "pass a weights file (.pth, .safetensors), a folder holding one, or hf:OWNER/REPO/FILE")
    return target


def resolve_known(name: str, subject: str) -> Path:
    """The cached copy of a registered file; never touches the network."""
    weights = KNOWN_WEIGHTS.get(name)
    if weights is None:
        raise InputError(subject, f"unknown weights {name!r}", f"use one of: {', '.join(sorted(KNOWN_WEIGHTS))}")
    fix = f"run 'satforge weights fetch {weights.group}' on a connected machine, or pass {subject} FILE"
    return _hub_file(HubFile(weights.repo, weights.filename, weights.revision), subject, local_only=True,
                     offline_fix=fix)


def list_weights() -> list[dict]:
    """Every registered file: name, source, revision (and whether it is a pinned commit), size,
    licence, whether it is in the local hub cache, and there its path and sha256."""
    from huggingface_hub import try_to_load_from_cache

    rows = []
    for w in KNOWN_WEIGHTS.values():
        cached = try_to_load_from_cache(w.repo, w.filename, revision=w.revision)
        path = Path(cached) if isinstance(cached, str) else None
        rows.append({
            "name": w.name, "group": w.group, "source": w.source, "revision": w.revision, "pinned": w.pinned,
            "size": w.size_bytes, "licence": w.licence, "present": path is not None,
            "path": str(path) if path else None, "sha256": sha256_file(path) if path else None,
        })
    return rows


def fetch_weights(name: str, progress: ProgressFn | None = None) -> list[Path]:
    """Download a registered file or group into the hub cache (resumes a partial download) and
    check it against the published size and sha256 where they are known.

    Without ``progress`` huggingface_hub draws its own bar; with it, byte progress goes there.
    """
    paths = []
    for w in known_weights(name):
        tqdm_class = _reporting_tqdm(progress, w.name) if progress else None
        fix = "check the network connection and that HF_HUB_OFFLINE is not set"
        path = _hub_file(HubFile(w.repo, w.filename, w.revision), "weights fetch", local_only=False,
                         offline_fix=fix, tqdm_class=tqdm_class)
        _check_published(w, path)
        paths.append(path)
    return paths


def load_state_dict(path: Path | str, subject: str | None = None) -> dict[str, Tensor]:
    """name -> tensor, from ``.safetensors`` or a torch pickle loaded with ``weights_only=True``.

    Pickles in torch's zip format are memory-mapped (tensors are read from the page cache as used
    instead of copied). The file must hold a plain state dict: upstream loads it with
    ``model.load_state_dict(torch.load(path))``, so wrappers are not unwrapped here either.
    """
    path = Path(path)
    subject = subject or str(path)
    if not path.is_file():
        raise InputError(subject, f"weights file {path} does not exist", "pass the path of a weights file")
    state = _load_safetensors(path, subject) if path.suffix == ".safetensors" else _load_pickle(path, subject)
    _require_tensors(state, subject)
    return dict(state)


def check_state_dict(expected: Mapping[str, Sequence[int]], state: Mapping[str, Tensor], subject: str,
                     what: str) -> None:
    """Fail unless ``state`` has exactly the keys of ``expected`` (name -> shape), with those shapes.

    Names the first missing key (in model order), else the first unexpected one (in file order).
    """
    fix = f"pass a checkpoint of {what}"
    missing = next((k for k in expected if k not in state), None)
    if missing is not None:
        raise InputError(subject, f"not {what} weights: missing key {missing!r}", fix)
    unexpected = next((k for k in state if k not in expected), None)
    if unexpected is not None:
        raise InputError(subject, f"not {what} weights: unexpected key {unexpected!r}", fix)
    for key, shape in expected.items():
        if tuple(state[key].shape) != tuple(shape):
            raise InputError(subject, f"{what} weights: {key!r} has shape {tuple(state[key].shape)}, "
                             f"the architecture its other weights imply needs {tuple(shape)}", fix)


def _hub_file(target: HubFile, subject: str, *, local_only: bool, offline_fix: str,
              tqdm_class: type | None = None) -> Path:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(target.repo, target.filename, revision=target.revision,
                                    local_files_only=local_only, tqdm_class=tqdm_class))
    except LocalEntryNotFoundError:
        raise InputError(subject, f"{target} is not in the local hub cache and cannot be downloaded here",
                         offline_fix) from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise InputError(subject, f"cannot download {target}: {_reason(err)}",
                         "check the repository, revision and file name") from None


def _reporting_tqdm(progress: ProgressFn, label: str) -> type:
    """A silent tqdm class that forwards huggingface_hub's byte counts to ``progress``."""
    from tqdm import tqdm

    class Reporting(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # no bar of its own: progress decides how to show it
            super().__init__(*args, **kwargs)
            self.done = kwargs.get("initial") or 0

        def update(self, n: float | None = 1) -> bool | None:
            self.done += n or 0
            if self.total:
                progress(min(1.0, self.done / self.total), f"downloading {label}")
            return None

    return Reporting


def _check_published(w: KnownWeights, path: Path) -> None:
    fix = f"delete {path} and run 'satforge weights fetch {w.name}' again"
    size = path.stat().st_size
    if w.size_bytes is not None and size != w.size_bytes:
        raise InputError(str(path), f"{w.name} has {size} bytes, the published file {w.size_bytes}", fix)
    if w.sha256 is not None and sha256_file(path) != w.sha256:
        raise InputError(str(path), f"{w.name} does not match the published sha256 {w.sha256}", fix)


def _load_pickle(path: Path, subject: str) -> object:
    import torch

    try:
        # mmap needs torch's zip format; a truncated zip is not one and fails below either way.
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError:
        raise InputError(subject, "refused: the pickle holds Python objects other than tensors, and loading "
                         "them could run code", "use the published file, a plain state dict or .safetensors") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as err:
        raise InputError(subject, f"truncated or corrupt weights file ({_reason(err)})",
                         "download it again") from None


def _load_safetensors(path: Path, subject: str) -> object:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise InputError(subject, f"truncated or corrupt safetensors file ({_reason(err)})",
                         "download it again") from None


def _require_tensors(state: object, subject: str) -> None:
    import torch

    fix = "pass a plain state dict (name -> tensor), as the published weights are"
    if not isinstance(state, Mapping):
        raise InputError(subject, f"not a state dict: the file holds {type(state).__name__}", fix)
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise InputError(subject, f"not a plain state dict: entry {key!r} is not a tensor ({type(value).__name__})",
                              fix)


def _reason(err: Exception) -> str:
    """The first sentence of an exception's message: libraries append paragraphs of advice."""
    text = str(err).strip()
    return text.splitlines()[0].split(". ")[0].rstrip(".") if text else type(err).__name__
