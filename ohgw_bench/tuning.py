"""Syne Tune's Tuner as a study runs it: its own console output quieted, its stop criterion the study's.

:func:`tune` runs the Tuner to the study's stop criterion (budget spent or the failure policy)
and turns SIGTERM, Ctrl-C, an adapter's broken contract and an unwritable folder into a
partial.json or a one-line error.
"""

from __future__ import annotations

import contextlib
import functools
import io
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ohgw_bench import validate
from ohgw_bench.errors import UserError
from ohgw_bench.folder import mark_ended
from ohgw_bench.spec import ResolvedStudy

FALSE_TUNER_WARNINGS = ("StoreResultsCallback",)
"""Syne Tune warnings that are false here: the study's recorder is a callback that writes every
result, so "no tuning results will be written" is not true."""


def quiet_tuner_logger() -> Any:
    """Syne Tune's TunerLogger reduced to its errors and true warnings, printed to stderr.

    Its per-trial chatter, status tables and failure-log dumps are dropped (each failure's
    error is in its row, each local trial's output in the study folder).
    """
    from syne_tune.tuner_logger import TunerLogger

    class Quiet(TunerLogger):
        def print_error(self, message: str) -> None:
            if message.startswith("An error happened during the tuning"):  # the error itself is reported
                return
            with contextlib.redirect_stdout(sys.stderr):
                super().print_error(message)

        def print_warning(self, message: str) -> None:
            if not any(false in message for false in FALSE_TUNER_WARNINGS):
                with contextlib.redirect_stdout(sys.stderr):
                    super().print_warning(message)

    for name in dir(TunerLogger):
        if name.startswith("print_") and name not in ("print_error", "print_warning"):
            setattr(Quiet, name, lambda self, *a, **k: None)
    return Quiet(use_colors=False, use_emojis=False)


@functools.lru_cache(maxsize=1)
def _tuner_class() -> type:
    """Syne Tune's Tuner without its per-loop count of failed trials.

    ``Tuner._stop_condition`` adds ``num_trials_failed > max_failures`` to the stop criterion,
    and counting walks every trial's status once per loop: on a surrogate study (thousands of
    trials, one result per loop) that scan was the harness's largest cost beyond Syne Tune's own
    loop (profiled, ``benchmarks/bench_lcbench.py``). The study's stop criterion already applies
    the failure policy (:meth:`ohgw_bench.recorder.StudyRecorder.too_many_failures`) and the Tuner gets
    ``max_failures=10**9``, so the count could never stop a study: dropping it changes nothing.
    """
    from syne_tune import Tuner

    class StudyTuner(Tuner):
        def _stop_condition(self) -> bool:
            return bool(self.stop_criterion(self.tuning_status))

    return StudyTuner


def tune(spec: ResolvedStudy, scheduler: Any, execution: Any, recorder: Any, folder: Path,
         verbose: bool = False) -> None:
    """Run the Tuner to the stop criterion; SIGTERM and Ctrl-C mark the study partial.

    Syne Tune's own console output (its experiment header, "Resource summary" table and
    status lines, and a warning that no StoreResultsCallback is given, which is false here: the
    recorder writes every result) is dropped unless ``verbose``; its errors still reach stderr.
    """
    interrupted: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        interrupted.append(signal.Signals(signum).name)
        raise KeyboardInterrupt

    def stop(_status: Any) -> bool:
        return execution.budget_spent() or recorder.too_many_failures(
            spec.max_failures, spec.max_consecutive_failures, spec.failure_sources) is not None

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, on_signal) if main_thread else None
    try:
        with contextlib.redirect_stdout(sys.stderr if verbose else io.StringIO()):
            tuner = _tuner_class()(trial_backend=execution.backend, scheduler=scheduler, stop_criterion=stop,
                          n_workers=spec.n_workers, sleep_time=execution.sleep_time, callbacks=[recorder],
                          save_tuner=False, tuner_name="tuner", suffix_tuner_name=False,
                          trial_backend_path=str(folder / "trials"), max_failures=10**9,
                          print_update_interval=10**9, results_update_interval=10**9,
                          output_logger=None if verbose else quiet_tuner_logger())
            tuner.run()
    except KeyboardInterrupt:
        mark_ended(recorder.writer, "interrupted", f"interrupted by {interrupted[0] if interrupted else 'SIGINT'}")
        recorder.writer.close()
        raise
    except validate.AdapterError as e:  # the adapter broke its contract mid-study (cost(), evaluate())
        mark_ended(recorder.writer, "adapter error", f"stopped: {e}")
        recorder.writer.close()
        raise
    except OSError as e:
        if e.filename is None and getattr(e, "errno", None) is None:
            raise
        raise UserError(f"cannot write results in {folder}: {e.strerror or e}") from None
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
