"""The MLflow half of bench/compare_speed.py; run with an interpreter that has mlflow installed.

python bench/mlflow_side.py build RUNS.jsonl sqlite:///mlflow.db
python bench/mlflow_side.py query all|filter|top50 sqlite:///mlflow.db
"""

import json
import re
import sys
import time

# MLflow takes metric and param names of letters, digits, _ - . / : and spaces; grpo-lab's per-group metrics are
# SPLIT[GROUP] (arith-v1[+], train_acc[*]_gain). Each is logged under a name MLflow takes, one to one.
_OPS = {"+": "plus", "-": "minus", "*": "times", "/": "div"}


def mlflow_name(name: str) -> str:
    """``arith-v1[+]_gain`` -> ``arith-v1.plus_gain``; names MLflow takes already stay as they are."""
    name = re.sub(r"\[([^\]]*)\]", lambda m: "." + _OPS.get(m.group(1), re.sub(r"[^\w.\- :]", "_", m.group(1))), name)
    return re.sub(r"[^/\w.\- :]", "_", name)


def build(runs_file: str, uri: str) -> None:
    """Log the first run through MlflowClient, then bulk-insert the rest in the same rows it wrote.

    Logging 10,000 runs of ~800 metrics through the client takes hours on 2 cores; the rows the client
    writes for one run (runs, params, tags, metrics, latest_metrics) are the template for the others,
    so MLflow's search_runs sees the store it would have built itself.
    """
    import sqlite3
    import uuid

    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp_id = client.create_experiment("bench")
    now = int(time.time() * 1000)
    with open(runs_file) as f:
        runs = [json.loads(line) for line in f]

    def metrics_of(run):
        rows = [(k, v, step) for step, m in run["steps"] for k, v in m.items()]
        return [(mlflow_name(k), v, s) for k, v, s in rows + [(k, v, 0) for k, v in run["final"].items()]]

    first = runs[0]
    r = client.create_run(exp_id, run_name=first["name"])
    client.log_batch(r.info.run_id, metrics=[Metric(k, v, now, s) for k, v, s in metrics_of(first)],
                     params=[Param(k, str(v)) for k, v in first["config"].items()])  # fmt: skip
    client.set_terminated(r.info.run_id)
    db = sqlite3.connect(uri.removeprefix("sqlite:///"))
    template = db.execute("SELECT * FROM runs WHERE run_uuid = ?", (r.info.run_id,)).fetchone()
    cols = [d[0] for d in db.execute("SELECT * FROM runs LIMIT 0").description]
    tags = db.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (r.info.run_id,)).fetchall()
    for n, run in enumerate(runs[1:], 1):
        rid = uuid.uuid4().hex
        row = dict(zip(cols, template, strict=True))
        row.update(run_uuid=rid, name=run["name"], artifact_uri=row["artifact_uri"].replace(r.info.run_id, rid))
        db.execute(f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})", list(row.values()))
        db.executemany("INSERT INTO params VALUES (?, ?, ?)", [(k, str(v), rid) for k, v in run["config"].items()])
        db.executemany("INSERT INTO tags VALUES (?, ?, ?)",
                       [(k, run["name"] if k == "mlflow.runName" else v, rid) for k, v in tags])  # fmt: skip
        rows = metrics_of(run)
        db.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, 0)", [(k, v, now, rid, s) for k, v, s in rows])
        latest = {k: (v, s) for k, v, s in rows}  # the last value logged per key
        db.executemany("INSERT INTO latest_metrics VALUES (?, ?, ?, ?, 0, ?)",
                       [(k, v, now, s, rid) for k, (v, s) in latest.items()])  # fmt: skip
        if n % 1000 == 0:
            db.commit()
            print(f"  MLflow store: {n} runs", flush=True)
    db.commit()
    db.close()


def query(kind: str, uri: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name("bench")
    if kind == "all":
        df = mlflow.search_runs([exp.experiment_id], max_results=100000)
    elif kind == "filter":
        df = mlflow.search_runs([exp.experiment_id], "params.beta = '0.1' and metrics.held_out >= 0.5",
                                max_results=100000)  # fmt: skip
    else:
        df = mlflow.search_runs([exp.experiment_id], max_results=50, order_by=["metrics.held_out DESC"])
    print(len(df))


if __name__ == "__main__":
    {"build": build, "query": query}[sys.argv[1]](*sys.argv[2:])
