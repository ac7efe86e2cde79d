"""The MLflow half of bench/compare_speed.py; run with an interpreter that has mlflow installed.

python bench/mlflow_side.py build RUNS.jsonl sqlite:///mlflow.db
python bench/mlflow_side.py query all|filter|top50 sqlite:///mlflow.db
"""

import json
import sys
import time


def build(runs_file: str, uri: str) -> None:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("bench") or client.get_experiment(client.create_experiment("bench"))
    now = int(time.time() * 1000)
    with open(runs_file) as f:
        for line in f:
            run = json.loads(line)
            r = client.create_run(exp.experiment_id, run_name=run["name"])
            metrics = [Metric(k, v, now, step) for step, m in run["steps"] for k, v in m.items()]
            metrics += [Metric(k, v, now, 0) for k, v in run["final"].items()]
            params = [Param(k, str(v)) for k, v in run["config"].items()]
            for i in range(0, len(metrics), 1000):
                client.log_batch(r.info.run_id, metrics=metrics[i : i + 1000], params=params if i == 0 else [],
                                 tags=[RunTag("status", run["status"])] if i == 0 else [])  # fmt: skip
            client.set_terminated(r.info.run_id)


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
