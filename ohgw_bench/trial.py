"""Entry point of one trial process under ``--backend local`` (Syne Tune's LocalBackend runs it).

A started or resumed process sees only its config file and its checkpoint folder: it loads the
state if a checkpoint exists, trains unit by unit to the config's fidelity target, saves the
state atomically BEFORE each report (so a PAUSE that kills the process right after a report
never loses the unit), and reports through Syne Tune's Reporter.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __name__ == "__main__" and not __package__:
    # Syne Tune's LocalBackend runs this FILE, which would put ohgw_bench/ itself first on
    # sys.path: import the package this file belongs to instead (the study's own checkout,
    # not whichever ohgw_bench is installed).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--st_config_json_filename", required=True)
    parser.add_argument("--st_checkpoint_dir", required=True)
    args, _ = parser.parse_known_args(argv)

    import torch
    from syne_tune import Reporter

    from ohgw_bench import tasks
    from ohgw_bench.backends import (
        FAILURE_KEY,
        READY_LINE,
        SEED_KEY,
        STATE_FILE,
        TIMEOUT_KEY,
        TrialRunner,
        load_trial_config,
    )

    torch.set_num_threads(1)
    config = load_trial_config(args.st_config_json_filename)
    task = tasks.make(config["ohgw_task"], data_dir=config.get("ohgw_data_dir"), **(config.get("ohgw_task_options") or {}))
    task.prepare()
    seed = int(config[SEED_KEY])  # the trial's training seed, from the study's plan (backends.ProcessBackend)
    runner = TrialRunner(task, lambda _trial_id: seed, unit_timeout=config.get(TIMEOUT_KEY))
    print(READY_LINE, file=sys.stderr, flush=True)
    trial_id = int(Path(args.st_config_json_filename).parent.name) if Path(args.st_config_json_filename).parent.name.isdigit() else 0
    ckpt_dir = Path(args.st_checkpoint_dir)
    ckpt = ckpt_dir / STATE_FILE
    if ckpt.exists():
        runner._states[trial_id] = task.load(ckpt)
    report = Reporter()
    target = runner.target(config)
    while runner.fidelity(trial_id) < target:
        result = runner.run_unit(trial_id, config)
        if FAILURE_KEY in result:
            report(**result)
            break
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        tmp = ckpt_dir / (STATE_FILE + ".tmp")
        task.save(runner.state(trial_id, config), tmp)
        os.replace(tmp, ckpt)
        report(**result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
