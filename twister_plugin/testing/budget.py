"""A stand-in trainer for ``utils.budget`` tests: its ``main(cmd=[path])`` writes the time to
``path`` five times a second until it is stopped (as ESPnet's ``Task.main`` would train)."""
from __future__ import annotations

import time
from pathlib import Path


class HeartbeatTask:
    @staticmethod
    def main(cmd: list[str]) -> None:
        path = Path(cmd[0])
        while True:
            path.write_text(f"{time.time()}\n")
            time.sleep(0.2)
