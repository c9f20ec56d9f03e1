"""Running a planned sweep: each run as its own `main.py --train` process, `--sweep_parallel` at a time, each with
its share of the machine (a GPU of its own, else its share of the CPU's threads); its console into
`logs/<run>.log`, sweep.json rewritten at every change, and the sweep's stop signals passed on to its runs.
run_and_report runs it and writes its report, and says how it went (SweepOutcome).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import shlex
import shutil
import signal
import subprocess
import time
import typing

from dcgan_tf.sweeps import report
from dcgan_tf.sweeps.plan import LOGS_DIR, Sweep, SweepRun, is_finished


def visible_gpus() -> list[str]:
    """The GPUs a run may be given (CUDA_VISIBLE_DEVICES' entries, else nvidia-smi's), [] when none."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip() and gpu.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(index) for index, line in enumerate(line for line in out.splitlines() if line.startswith("GPU "))]


def run_environment(slot: int, parallel: int, gpus: list[str], cpus: int | None = None) -> dict:
    """The environment of the run in `slot` of `parallel` at once: a GPU of its own (round robin; memory grown as
    needed where runs share one) where there are GPUs, else its share of the CPU's threads (TensorFlow's pools and
    OpenMP's). One run at a time keeps the whole machine (every GPU, every core)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if parallel < 2:
        return env
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
        if parallel > len(gpus):
            env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    else:
        threads = str(max(1, (cpus or os.cpu_count() or 1) // parallel))
        env.update(TF_NUM_INTRAOP_THREADS=threads, TF_NUM_INTEROP_THREADS=threads, OMP_NUM_THREADS=threads)
    return env


@dataclasses.dataclass
class _Running:
    run: SweepRun
    process: subprocess.Popen
    started: float
    slot: int
    log_handle: typing.IO
    signalled: int = 0  # how many of the sweep's stop signals it has been passed


def run_sweep(sweep: Sweep, program: typing.Sequence[str], parallel: int = 1,
              say: typing.Callable[[str], None] = print, poll_seconds: float = 0.5) -> Sweep:
    """Train every unfinished run of the sweep, `parallel` at a time, each as `program + run.args` in its own
    process (console into logs/<run>.log); finished runs are skipped. A failed run is recorded and the others go
    on. sweep.json is rewritten at every change.

    The runs have sessions of their own, so a signal reaches them through the sweep alone: SIGINT or SIGTERM to the
    sweep (Ctrl-C included) is passed to each running run once, as each received it, so they checkpoint and stop;
    no new run starts, and KeyboardInterrupt is raised once they have (the same command resumes). A second signal
    is passed on too (a second Ctrl-C stops a run at once)."""
    os.makedirs(os.path.join(sweep.folder, LOGS_DIR), exist_ok=True)
    todo = []
    for run in sweep.runs:
        run.log = run.log or os.path.join(LOGS_DIR, f"{run.name}.log")
        if is_finished(run):
            run.status = "finished"
        else:
            run.status = "pending" if run.status == "finished" else run.status  # --epoch raised since
            todo.append(run)
    done = len(sweep.runs) - len(todo)
    if done:
        say(f"sweep {sweep.name}: {done} of {len(sweep.runs)} runs already finished; skipping them")
    sweep.save()
    gpus = visible_gpus()
    parallel = max(1, parallel)
    running: list[_Running] = []
    signals: list[int] = []  # the stop signals received, in order; the handler only records them

    def stop(signum, _frame):  # a hang-up (the terminal closed) stops the runs as SIGTERM does
        signals.append(signal.SIGTERM if signum == getattr(signal, "SIGHUP", None) else signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is None:
            continue
        try:
            previous[signum] = signal.signal(signum, stop)
        except ValueError:  # not the main thread: no handlers
            pass
    count = len(sweep.runs)
    try:
        while todo or running:
            while todo and len(running) < parallel and not signals:
                run = todo.pop(0)
                slot = min(set(range(parallel)) - {item.slot for item in running})
                handle = open(os.path.join(sweep.folder, run.log), "a", encoding="utf-8")
                handle.write(f"\n# {datetime.datetime.now().isoformat(timespec='seconds')} "
                             f"{shlex.join(run.command(program))}\n")
                handle.flush()
                process = subprocess.Popen([*program, *run.args], stdout=handle, stderr=subprocess.STDOUT,
                                           env=run_environment(slot, parallel, gpus), start_new_session=True,
                                           preexec_fn=_stop_with_parent)
                running.append(_Running(run, process, time.monotonic(), slot, handle))
                run.status = "running"
                sweep.save()
                where = f" on GPU {gpus[slot % len(gpus)]}" if gpus and parallel > 1 else ""
                say(f"[{sweep.runs.index(run) + 1}/{count}] {run.name} ({run.label}) started{where}; log: "
                    f"{os.path.join(sweep.folder, run.log)}")
            _pass_on(running, signals)
            time.sleep(poll_seconds)
            _pass_on(running, signals)
            for item in [item for item in running if item.process.poll() is not None]:
                running.remove(item)
                item.log_handle.close()
                _record_end(sweep, item, say, count)
            if signals and not running:
                break
    finally:
        for item in running:  # an error here: stop the runs (they checkpoint), and record them
            if item.process.poll() is None:
                item.process.send_signal(signal.SIGTERM)
            item.process.wait()
            item.log_handle.close()
            _record_end(sweep, item, say, count)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if signals:
        sweep.save()
        raise KeyboardInterrupt(signal.Signals(signals[0]).name)
    return sweep


def _stop_with_parent() -> None:
    """In a run's process before it starts (Linux): SIGTERM when the sweep's process dies, however it dies, so no
    run trains on untracked (it checkpoints and stops; the same sweep command resumes it)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the run outlives a killed sweep (its lock still guards it)
        pass


def _pass_on(running: list[_Running], signals: list[int]) -> None:
    """Pass each stop signal the sweep received to every running run that has not had it yet."""
    for item in running:
        while item.signalled < len(signals) and item.process.poll() is None:
            item.process.send_signal(signals[item.signalled])
            item.signalled += 1


def _record_end(sweep: Sweep, item: _Running, say, count: int) -> None:
    run, code = item.run, item.process.returncode
    seconds = time.monotonic() - item.started
    run.returncode, run.wall_seconds = code, run.wall_seconds + seconds
    number = f"[{sweep.runs.index(run) + 1}/{count}] {run.name}"
    if code == 0 and is_finished(run):
        run.status = "finished"
        say(f"{number} finished in {seconds / 60:.1f} min")
    elif code in (0, 130, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGTERM):
        run.status = "stopped"
        say(f"{number} stopped after {seconds / 60:.1f} min; the same command resumes it")
    else:
        run.status = "failed"
        last = last_lines(os.path.join(sweep.folder, run.log), 1)
        how = f"exit {code}"
        if code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                pass
        say(f"{number} failed ({how}) after {seconds / 60:.1f} min: {last[0] if last else 'no output'} "
            f"(log: {os.path.join(sweep.folder, run.log)}); the other runs go on")
    sweep.save()


def last_lines(path: str, count: int) -> list[str]:
    """The last `count` non-empty lines of a text file ([] when missing)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = [line.rstrip() for line in handle.read().splitlines() if line.strip()]
    except OSError:
        return []
    return lines[-count:]


# ------------------------------------------------------------------------------------------ the outcome
@dataclasses.dataclass
class SweepOutcome:
    """How a sweep went: its runs (each with its status), its report's files, and the signal that stopped it."""

    sweep: Sweep
    written: list  # the report's files, report.html last
    stopped_by: str | None = None  # the stop signal's name (its running runs saved a checkpoint); None: not stopped

    @property
    def finished(self) -> list[SweepRun]:
        return [run for run in self.sweep.runs if run.status == "finished"]

    @property
    def unfinished(self) -> list[SweepRun]:
        """The runs that failed, then those that stopped: the same sweep command resumes them."""
        return [run for status in ("failed", "stopped") for run in self.sweep.runs if run.status == status]

    @property
    def report_html(self) -> str:
        return os.path.join(self.sweep.folder, report.REPORT_HTML)

    def unfinished_lines(self) -> list[str]:
        """One line per unfinished run: its name, how it ended, its exit code and its log."""
        return [f"{run.name} {'failed' if run.status == 'failed' else 'stopped'} (exit {run.returncode}, log "
                f"{os.path.join(self.sweep.folder, run.log)})" for run in self.unfinished]


def run_and_report(sweep: Sweep, program: typing.Sequence[str], parallel: int = 1,
                   say: typing.Callable[[str], None] = print) -> SweepOutcome:
    """run_sweep, then the sweep's report from what its runs hold (report.write_report), also when a stop signal
    ends it early (SweepOutcome.stopped_by)."""
    try:
        run_sweep(sweep, program, parallel=parallel, say=say)
    except KeyboardInterrupt as stopped:
        return SweepOutcome(sweep, report.write_report(sweep.folder), stopped_by=str(stopped) or "SIGINT")
    return SweepOutcome(sweep, report.write_report(sweep.folder))
