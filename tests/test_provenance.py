from grpo_lab.provenance import environment, git_state, redact_args, versions


def test_secret_flag_values_are_redacted():
    args = ["grpo-lab", "run", "--api_key", "s3cret", "--hf-token=abc", "--seed", "1", "--PASSWORD", "x"]
    assert redact_args(args) == ["grpo-lab", "run", "--api_key", "***", "--hf-token=***", "--seed", "1",
                                 "--PASSWORD", "***"]  # fmt: skip


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
