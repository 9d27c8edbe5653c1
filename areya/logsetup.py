"""One place for what Areya prints while starting: Python log levels and the native libraries' own chatter.

TensorFlow (and the absl / XLA / oneDNN / CUDA code under it) writes straight to file descriptor 2 while it is
imported and while it looks for a GPU: ``oneDNN custom operations are on``, ``Could not find cuda drivers``,
``E0000 ... failed call to cuInit ... (303)`` on every CPU-only machine.  None of it is a problem, all of it reads
like one.  :func:`quiet_native_libraries` sets the environment those libraries read (before they are imported)
and :func:`import_tensorflow_quietly` imports TensorFlow (and creates a first TFLite interpreter, whose XNNPACK
line is printed once per process) with fd 2 pointed at ``/dev/null`` (the absl lines printed before
``absl::InitializeLog()`` ignore every environment variable).  The ``areya`` root command calls
both before any sub-command runs; at log level DEBUG nothing is hidden.

:func:`setup_logging` configures Python logging for the long-running commands: third-party INFO (Alembic's
migration steps, APScheduler's per-tick lines, absl) only at DEBUG.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# environment read by TensorFlow, XLA, gRPC and glog-based libraries (MediaPipe); set only where the user has not
QUIET_ENV: dict[str, str] = {
    "TF_CPP_MIN_LOG_LEVEL": "3",  # no INFO/WARNING/ERROR from TensorFlow's C++ (the cuInit E0000 line is ERROR)
    "GRPC_VERBOSITY": "ERROR",
    "GLOG_minloglevel": "2",
}
# Python loggers that say too much at INFO (shown again at DEBUG)
CHATTY_LOGGERS: tuple[str, ...] = ("alembic", "apscheduler", "absl", "tensorflow", "h5py", "matplotlib", "PIL")


def is_debug(level: str | None) -> bool:
    return (level or "").strip().upper() == "DEBUG"


def quiet_native_libraries(level: str | None) -> None:
    """Set the native libraries' log environment (no effect on a library already imported)."""
    if is_debug(level):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
        return
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 at /dev/null for the block (native code's writes included)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly(level: str | None) -> bool:
    """Import TensorFlow now, its start-up lines discarded (not at DEBUG); False if it is not installed.

    Errors are not hidden: an import that fails raises nothing here and fails again, loudly, where it is used.
    """
    if "tensorflow" in sys.modules:
        return True
    quiet_native_libraries(level)
    if is_debug(level):
        return False
    try:
        with stderr_silenced():
            import tensorflow  # noqa: F401, PLC0415
    except Exception:  # noqa: BLE001 - not installed or broken: the real import later reports it
        return False
    _prime_tflite()
    return True


def _prime_tflite() -> None:
    """Create one BlazeFace TFLite interpreter with fd 2 silenced: TFLite prints ``INFO: Created TensorFlow Lite
    XNNPACK delegate for CPU.`` once per process, at the first interpreter, whatever the log settings say."""
    try:
        from areya.detectors.blazeface import MODELS, make_interpreter, model_dir  # noqa: PLC0415

        path = model_dir() / MODELS["short"].filename
        if path.is_file():
            with stderr_silenced():
                make_interpreter(path, 1)
    except Exception:  # noqa: BLE001 - detectors not installed: nothing to prime
        logging.getLogger(__name__).debug("TFLite not primed", exc_info=True)


def setup_logging(level: str, *, quiet: tuple[str, ...] = ()) -> None:
    """Root logging at ``level``; :data:`CHATTY_LOGGERS` (and ``quiet``) at WARNING unless ``level`` is DEBUG (then
    they follow the root again, also after an earlier call at another level in the same process)."""
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), format=LOG_FORMAT)
    for name in (*CHATTY_LOGGERS, *quiet):
        logging.getLogger(name).setLevel(logging.NOTSET if is_debug(level) else logging.WARNING)
