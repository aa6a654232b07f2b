"""SIGINT/SIGTERM during training: stop at the next step boundary, then checkpoint.

SAELens 6.54 raises from inside its signal handler, wherever the interpreter happens
to be (possibly between ``optimizer.step()`` and the scheduler steps), then saves
into a folder it never creates. Here the first signal only *requests* a stop; the
runner honours it at the start of the next training step, where every piece of
state is consistent, and writes a full checkpoint there. A second signal stops at
once, without a checkpoint (for a hung step). The previous handlers come back when
training ends, however it ends.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType, TracebackType
from typing import Any

logger = logging.getLogger(__name__)

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal; ``checkpoint_path`` is where it can resume from.

    A ``KeyboardInterrupt``, so code that already handles Ctrl-C handles it too.
    ``checkpoint_path`` is None when no checkpoint was written (no
    ``checkpoint_path`` configured, or a second signal stopped mid-step).
    """

    def __init__(self, signum: int, checkpoint_path: str | None = None):
        super().__init__(f"training interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.checkpoint_path = checkpoint_path
        self.at_step_boundary = True

    @property
    def exit_code(self) -> int:
        """The shell convention for death by signal: ``128 + signum``."""
        return 128 + self.signum


class InterruptGuard:
    """Context manager: SIGINT/SIGTERM request a stop; ``check()`` honours it.

    Outside the main thread Python cannot install handlers; the guard then does
    nothing (and says so), leaving the process's handlers alone.
    """

    def __init__(self) -> None:
        self.requested_signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is not threading.main_thread():
            logger.warning("not in the main thread: SIGINT/SIGTERM are not handled")
            return self
        for signum in HANDLED_SIGNALS:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:  # noqa: ARG002
        if self.requested_signum is not None:
            interrupted = TrainingInterrupted(signum)
            interrupted.at_step_boundary = False
            raise interrupted
        self.requested_signum = signum
        logger.warning(
            "%s received: stopping after the current step and writing a checkpoint "
            "(send it again to stop at once, without a checkpoint)",
            signal.Signals(signum).name,
        )

    def check(self) -> None:
        """Raise ``TrainingInterrupted`` if a signal arrived; call at step boundaries."""
        if self.requested_signum is not None:
            raise TrainingInterrupted(self.requested_signum)
