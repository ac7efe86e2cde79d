"""Every command on a team's PostgreSQL store (a real server, pgserver.py), reached through a URL with a password
that is found nowhere afterwards: not in the store, the output, the journal or the WandB directory."""

import csv
import io
import json
import os
from pathlib import Path

import pytest
from conftest import QUICK_RUN, grpo_lab
from sqlalchemy import create_engine, inspect, text

pytestmark = pytest.mark.slow
OFFLINE = [a for a in QUICK_RUN if a not in ("--wandb", "disabled")] + ["--wandb", "offline"]


@pytest.fixture(scope="module")
def team(pg_server, tmp_path_factory):
    """One real run (WandB offline) recorded with --db URL, and one evaluation recorded with GRPO_LAB_DB=URL,
    on a fresh database; every output kept for the password check."""
    database = pg_server.create_database()
    url = pg_server.url(database)
    cwd = tmp_path_factory.mktemp("team")
    outputs = []

    def cli(*args, env=None, **kw):
        proc = grpo_lab(*args, env={"GRPO_LAB_DB": None, "WANDB_MODE": None, **(env or {})}, cwd=cwd, **kw)
        outputs.append(proc.stdout + proc.stderr)
        return proc

    proc = cli("run", *OFFLINE, "--hypothesis", "a team run", "--exp_name", "team", "--seed", "1", "--tags", "pg",
               "--criteria", "held_out >= 0", "--output_dir", str(cwd / "out"), "--db", url)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    proc = cli("eval", "--model_name", "tiny-arith", "--suite", "arith-v1", env={"GRPO_LAB_DB": url})
    assert proc.returncode == 0, proc.stderr
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT kind, id FROM run")).all())
    yield {"url": url, "cli": cli, "cwd": cwd, "outputs": outputs, "engine": engine, "server": pg_server,
           "run": ids["train"], "eval": ids["eval"]}  # fmt: skip
    engine.dispose()
    pg_server.drop_database(database)


def test_every_command_works_on_postgresql(team):
    exercise(team)


def exercise(team):
    """Every command, once per module: the password test checks their output, the journal and its plots."""
    if team.get("exercised"):
        return
    team["exercised"] = True
    cli, url, run_id, eval_id = team["cli"], team["url"], team["run"], team["eval"]
    with team["engine"].connect() as conn:
        assert conn.execute(text("SELECT status, verdict FROM run WHERE id = :i"), {"i": run_id}).one() == (
            "finished", "confirmed")  # fmt: skip
        assert conn.execute(text("SELECT count(*) FROM prediction WHERE run_id = :i"), {"i": eval_id}).scalar() == 200
    runs = json.loads(cli("runs", "--db", url, "--format", "json").stdout)
    assert [r["id"] for r in runs] == [eval_id, run_id]
    assert run_id in cli("show", run_id[:5], "--db", url, env={"COLUMNS": "200"}).stdout
    assert cli("note", run_id, "beta matters", "--kind", "learning", "--db", url).returncode == 0
    assert "beta matters" in cli("show", run_id, "--db", url, env={"COLUMNS": "200"}).stdout
    diff = cli("diff", run_id, eval_id, "--db", url, env={"COLUMNS": "200"})
    assert diff.returncode == 0 and "Configuration" in diff.stdout
    rows = json.loads(cli("compare", "--db", url, "--format", "json").stdout)
    assert [r["id"] for r in rows] == [eval_id, run_id] and 0 <= rows[1]["held_out"] <= 1
    for args, expected in [
        (["--where", "beta=0.1 and held_out>=0"], [run_id]),
        (["--where", "dataset_type=arithmetic and kind=train and seed<2"], [run_id]),
        (["--where", "verdict=confirmed"], [run_id]),
        (["--where", "arith-v1>=0"], [eval_id, run_id]),
        (["--sort", "-arith-v1", "--limit", "1"], [max((eval_id, run_id), key=lambda i: by_id(rows, i)["arith-v1"])]),
        (["--sort", "started", "--limit", "1"], [run_id]),
        (["--last", "1"], [eval_id]),
        (["--tag", "pg"], [run_id]),
        ([run_id[:4]], [run_id]),
    ]:
        proc = cli("compare", "--db", url, "--format", "csv", *args)
        assert proc.returncode == 0, (args, proc.stderr)
        assert [r["id"] for r in csv.DictReader(io.StringIO(proc.stdout))] == expected, args
    assert "learning_rate" in cli("compare", "--db", url, "--all-columns", "--format", "md").stdout
    grouped = cli("compare", "--db", url, "--group-by-seed", "--baseline", "team", "--metric", "arith-v1",
                  "--format", "md")  # fmt: skip
    assert grouped.returncode == 0 and "Paired by seed" in grouped.stdout, grouped.stderr
    titled = cli("compare", run_id, "--db", url, "--format", "table", env={"COLUMNS": "250"}).stdout
    assert titled.splitlines()[0].strip() == "1 run"
    render = cli("journal", "render", "--db", url, "--out", str(team["cwd"] / "journal" / "journal.md"))
    assert render.returncode == 0 and "rendered 2 runs" in render.stdout, render.stderr
    journal = (team["cwd"] / "journal" / "journal.md").read_text()
    assert f"Run ID: {run_id}" in journal and "beta matters" in journal
    assert (team["cwd"] / "journal" / "assets" / f"{run_id}.png").exists()
    one = cli("journal", "render", run_id, "--stdout", "--db", url)
    assert one.returncode == 0 and one.stdout.count("### ") == 1
    # the report beside the journal: its run data and page are scanned for the password with every other file
    report = cli("report", "--db", url, "--out", str(team["cwd"] / "journal" / "report.html"))
    assert report.returncode == 0 and "2 runs" in report.stdout, report.stderr
    assert run_id in (team["cwd"] / "journal" / "report.html").read_text()


def by_id(rows, run_id):
    return next(r for r in rows if r["id"] == run_id)


def test_the_password_is_found_nowhere(team):
    exercise(team)
    secret = team["server"].password
    url_without = team["url"].replace(f":{secret}@", "@")
    found = []
    with team["engine"].connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                if any(secret in str(v) for v in row):
                    found.append(f"table {table}")
        command, environment = conn.execute(text("SELECT command, environment FROM run WHERE id = :i"),
                                            {"i": team["run"]}).one()  # fmt: skip
        eval_env = conn.execute(text("SELECT environment FROM run WHERE id = :i"), {"i": team["eval"]}).scalar()
    found += [f"output of command {i}" for i, out in enumerate(team["outputs"]) if secret in out]
    files = [p for p in Path(team["cwd"]).rglob("*") if p.is_file()]
    assert any("wandb" in p.parts for p in files) and {".md", ".html", ".png"} <= {p.suffix for p in files}
    found += [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert found == []
    # what is recorded still says where the store is, and reruns with the password from the user's environment
    assert f"--db {url_without}" in command
    assert json.loads(eval_env)["GRPO_LAB_DB"] == url_without
    proc = grpo_lab("runs", "--format", "csv", env={"GRPO_LAB_DB": url_without, "PGPASSWORD": secret})
    assert proc.returncode == 0 and team["run"] in proc.stdout, proc.stderr
    refused = grpo_lab("runs", "--db", url_without, env={"PGPASSWORD": None, "PGPASSFILE": "/nonexistent"})
    assert refused.returncode == 2 and "password" in refused.stderr and len(refused.stderr.splitlines()) == 1


SWEEP_TOML = """
name = "pw"
hypothesis = "no password leaks through a sweep"
seeds = "1-2"
baseline = "beta=0.1"
[base]
model_name = "tiny-arith"
n_samples = 32
batch_size = 16
num_generations = 4
eval_samples = 10
eval_suite = "none"
max_steps = 1
[grid]
beta = [0.1]
"""


class CommandLines:
    """Every process's command line on this machine, read from /proc while a command runs: what `ps` shows every
    user. Collects the ones that hold ``secret``."""

    def __init__(self, secret: str):
        import threading

        self.secret, self.found, self.seen = secret.encode(), [], 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self):
        me = os.getpid()
        while not self.stop.wait(0.05):
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) == me:
                    continue
                try:
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if b"grpo_lab" in cmdline or b"grpo-lab" in cmdline:
                    self.seen += 1
                typed = b"from grpo_lab.cli import main" in cmdline  # a command the test typed, --db URL and all
                if self.secret in cmdline and not typed:
                    self.found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_sweeps_workers_submitit_and_resume_leak_no_password(team, tmp_path):
    """A sweep with --parallel 2 (its workers), a sweep through submitit's local executor, a resume, the sweep's
    journal: the password of the store's URL is in no process's command line, no table, no output and no file but
    the one private file that hands it to submitit's jobs (mode 600 in a folder only its owner may enter)."""
    pytest.importorskip("submitit")
    secret, url = team["server"].password, team["url"]
    cwd = team["cwd"] / "sweeps"
    cwd.mkdir()
    (cwd / "s.toml").write_text(SWEEP_TOML)
    (cwd / "t.toml").write_text(SWEEP_TOML.replace('name = "pw"', 'name = "pw-submitit"'))

    def run(*args, env=None):
        proc = grpo_lab(*args, env={"GRPO_LAB_DB": None, "WANDB_MODE": None, **(env or {})}, cwd=cwd, timeout=900)
        team["outputs"].append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    with CommandLines(secret) as lines:
        run("sweep", "s.toml", "--parallel", "2", "--wandb", "offline", "--db", url)
        run("sweep", "t.toml", "--executor", "submitit-local", "--parallel", "2", "--wandb", "disabled",
            env={"GRPO_LAB_DB": url})  # fmt: skip
        # a resume, from a run's last checkpoint (the run is made resumable by hand: failed)
        run("run", *OFFLINE, "--hypothesis", "resumed", "--exp_name", "resumed", "--save_steps", "1",
            "--output_dir", str(cwd / "resumed"), "--db", url)  # fmt: skip
        with team["engine"].begin() as conn:
            conn.execute(text("UPDATE run SET status = 'failed' WHERE exp_name = 'resumed'"))
            resumed = conn.execute(text("SELECT id FROM run WHERE exp_name = 'resumed'")).scalar()
        run("resume", resumed, "--db", url, env={"WANDB_MODE": "offline"})
        # handed over to accelerate's launcher: the launcher and both ranks
        run("run", *QUICK_RUN, "--hypothesis", "two processes", "--exp_name", "ddp", "--num_processes", "2",
            "--db", url)  # fmt: skip
        run("journal", "render", "--sweep", "pw", "--out", str(cwd / "j.md"), "--db", url)
    assert lines.seen > 0 and lines.found == []
    assert secret not in (cwd / "j.md").read_text() and "--db postgresql://lab@" in (cwd / "j.md").read_text()
    with team["engine"].connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                assert not any(secret in str(v) for v in row), table
    assert not [out for out in team["outputs"] if secret in out]
    holding = [p for p in cwd.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert [p.name for p in holding] == ["store-url"]
    assert holding[0].stat().st_mode & 0o777 == 0o600 and holding[0].parent.stat().st_mode & 0o777 == 0o700
    submitit = holding[0].parent
    assert list(submitit.glob("*_submitted.pkl")) and submitit.parent.stat().st_mode & 0o777 == 0o700
