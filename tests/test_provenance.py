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


def git_repo(path):
    """A work tree with one commit of a text file and a binary file."""
    import subprocess

    def git(*args):
        subprocess.run(["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                       capture_output=True)  # fmt: skip

    git("init", "-q")
    (path / "train.py").write_text("lr = 1e-5\n")
    (path / "weights.bin").write_bytes(bytes(range(256)))
    git("add", "train.py", "weights.bin")
    git("commit", "-qm", "m")
    return git


def test_a_dirty_trees_diff_is_kept_and_applies_to_its_commit(tmp_path):
    import subprocess

    from grpo_lab.provenance import Code, code_state

    git = git_repo(tmp_path)
    clean = code_state(str(tmp_path))
    assert clean.dirty is False and clean.diff is None and clean.diff_bytes is None and len(clean.commit) == 40
    (tmp_path / "train.py").write_text("lr = 5e-5  # ä\n")
    (tmp_path / "weights.bin").write_bytes(bytes(reversed(range(256))))
    (tmp_path / "untracked.py").write_text("not part of it\n")
    dirty = code_state(str(tmp_path))
    assert dirty.commit == clean.commit and dirty.dirty is True
    assert "+lr = 5e-5  # ä" in dirty.diff and "GIT binary patch" in dirty.diff and "untracked" not in dirty.diff
    assert dirty.diff_bytes == len(dirty.diff.encode())
    # the diff puts the code back: on a clean checkout of the commit it applies and gives the files that ran
    (tmp_path / "run.patch").write_text(dirty.diff)
    git("stash", "-q")
    assert (tmp_path / "train.py").read_text() == "lr = 1e-5\n"
    git("apply", "run.patch")
    assert (tmp_path / "train.py").read_text() == "lr = 5e-5  # ä\n"
    assert (tmp_path / "weights.bin").read_bytes() == bytes(reversed(range(256)))
    assert code_state(str(tmp_path), diff=False) == Code(dirty.commit, True)
    subprocess.run(["git", "-C", str(tmp_path), "checkout", "-q", "."], check=True)


def test_a_diff_over_the_limit_is_measured_not_kept(tmp_path, monkeypatch):
    from grpo_lab import provenance

    git_repo(tmp_path)
    (tmp_path / "train.py").write_text("x = 1\n" * 1000)
    monkeypatch.setattr(provenance, "DIFF_LIMIT", 1000)
    big = provenance.code_state(str(tmp_path))
    assert big.dirty is True and big.diff is None and big.diff_bytes > 1000
    (tmp_path / "train.py").write_bytes("lr = 5e-5  # caf\xe9\n".encode("latin-1"))  # not UTF-8: not kept as text
    latin = provenance.code_state(str(tmp_path))
    assert latin.dirty is True and latin.diff is None and latin.diff_bytes > 0
