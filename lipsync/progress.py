"""Progress and cancellation for long stages: a tqdm bar for the terminal and, for other
front ends (a web page, a batch driver), a callback told (stage, done, total) and a cancel
check asked between steps."""
from __future__ import annotations

import dataclasses
from typing import Callable, Optional

from tqdm import tqdm

from .errors import Cancelled

ProgressCallback = Callable[[str, int, Optional[int]], None]  # (stage name, steps done, steps in all or None)
CancelCheck = Callable[[], bool]  # True: stop as soon as possible


@dataclasses.dataclass
class Progress:
    """How a run reports: `quiet` hides the bars; `callback` and `cancel` are optional."""

    quiet: bool = False
    callback: Optional[ProgressCallback] = None
    cancel: Optional[CancelCheck] = None

    def check(self) -> None:
        """Raise Cancelled when the caller asked to stop."""
        if self.cancel is not None and self.cancel():
            raise Cancelled("cancelled: no output written")

    def stage(self, name: str, total: Optional[int], unit: str = "frame") -> "Stage":
        return Stage(self, name, total, unit)


class Stage:
    """One stage's bar: `update(n)` after each n steps (reports, then checks for cancel)."""

    def __init__(self, progress: Progress, name: str, total: Optional[int], unit: str):
        self.progress, self.name, self.total, self.unit, self.done = progress, name, total, unit, 0
        self._bar = None

    def update(self, n: int = 1) -> None:
        self.done += n
        self._bar.update(n)
        if self.progress.callback is not None:
            self.progress.callback(self.name, self.done, self.total)
        self.progress.check()

    def __enter__(self) -> "Stage":
        self.progress.check()
        self._bar = tqdm(total=self.total, desc=self.name, unit=self.unit, disable=self.progress.quiet, leave=False)
        if self.progress.callback is not None:
            self.progress.callback(self.name, 0, self.total)
        return self

    def __exit__(self, *exc) -> None:
        self._bar.close()
