from grpo_lab.provenance import environment, git_state, redact_args, versions


def test_secret_flag_values_are_redacted():
    args = ["grpo-lab", "run", "--api_key", "s3cret", "--hf-token=abc", "--seed", "1", "--PASSWORD", "x"]
    assert redact_args(args) == ["grpo-lab", "run", "--api_key", "***", "--hf-token=***", "--seed", "1",
                                 "--PASSWORD", "***"]  # fmt: skip


def test_redaction_keys_on_secret_names_not_on_substrings():
    """An eval's recorded command reruns: --max_new_tokens is a count, not a token."""
    args = ["grpo-lab", "eval", "--max_new_tokens", "16", "--max-new-tokens=8", "--apiKey", "k", "--use_auth_token",
            "--seed", "1", "--private-key-file", "/k"]  # fmt: skip
    assert redact_args(args) == ["grpo-lab", "eval", "--max_new_tokens", "16", "--max-new-tokens=8", "--apiKey", "***",
                                 "--use_auth_token", "--seed", "1", "--private-key-file", "***"]  # fmt: skip
    env = {"TOKENIZERS_PARALLELISM": "false", "HF_HUB_TOKEN": "t", "WANDB_KEY_FILE": "f", "TORCH_HOME": "/t"}
    assert environment(env) == {"HF_HUB_TOKEN": "***", "TOKENIZERS_PARALLELISM": "false", "TORCH_HOME": "/t",
                                "WANDB_KEY_FILE": "***"}  # fmt: skip


def test_url_passwords_are_left_out_of_every_value():
    args = [
        "grpo-lab",
        "run",
        "--db",
        "postgresql://me:s3cr3t@db.lab:5432/lab",
        "--db=postgresql+psycopg://me:p@h/x",
        "--model_name",
        "https://user:tok@example.org/m",
        "--notes",
        "see http://host:8080/x and ftp://a@b/c",
    ]
    assert redact_args(args) == ["grpo-lab", "run", "--db", "postgresql://me@db.lab:5432/lab",
                                 "--db=postgresql+psycopg://me@h/x", "--model_name", "https://user@example.org/m",
                                 "--notes", "see http://host:8080/x and ftp://a@b/c"]  # fmt: skip
    env = {"GRPO_LAB_DB": "postgresql://me:s3cr3t@db.lab/lab", "WANDB_BASE_URL": "https://api.wandb.ai"}
    assert environment(env) == {"GRPO_LAB_DB": "postgresql://me@db.lab/lab", "WANDB_BASE_URL": "https://api.wandb.ai"}


def test_secret_environment_variables_are_redacted():
    env = {"WANDB_API_KEY": "k", "HF_TOKEN": "t", "WANDB_PROJECT": "p", "HOME": "/root", "GRPO_LAB_SECRET": "s"}
    assert environment(env) == {"GRPO_LAB_SECRET": "***", "HF_TOKEN": "***", "WANDB_API_KEY": "***",
                                "WANDB_PROJECT": "p"}  # fmt: skip


def test_versions_name_the_stack():
    v = versions()
    assert {"python", "torch", "transformers", "trl", "grpo-lab"} <= set(v)


def test_git_state_outside_a_work_tree(tmp_path):
    assert git_state(str(tmp_path)) == (None, None)


def test_git_state_inside_a_work_tree(tmp_path):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("a")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "m"],
                   check=True)  # fmt: skip
    commit, dirty = git_state(str(tmp_path))
    assert len(commit) == 40 and dirty is False
    (tmp_path / "f").write_text("b")
    assert git_state(str(tmp_path))[1] is True
