"""One logging format for every Twister entry point (file:line, and rank under DDP)."""
from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)s [%(rank)s%(filename)s:%(lineno)d] %(message)s"


class _RankFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        rank = os.environ.get("RANK")
        record.rank = f"rank{rank} " if rank not in (None, "") else ""
        return True


def setup_logging(level: str | int = "INFO") -> logging.Logger:
    """Configure the root logger once; safe to call again (it resets the handler)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RankFilter())
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    return root


def log_config(logger: logging.Logger, name: str, config: object) -> None:
    """Log a resolved config (dataclass, dict or argparse Namespace) at start."""
    items = config if isinstance(config, dict) else getattr(config, "__dict__", {"value": config})
    logger.info("%s config: %s", name, " ".join(f"{k}={v!r}" for k, v in sorted(items.items())))


def process_seconds() -> float | None:
    """Seconds since this process started (Linux ``/proc``; None elsewhere): a job logs it when its
    model is loaded, so start-up (interpreter, imports, CUDA, model) is told apart from work."""
    try:
        with open("/proc/self/stat") as f:  # field 22, starttime, in clock ticks after boot
            start = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as f:
            return round(float(f.read().split()[0]) - start, 2)
    except (OSError, ValueError, IndexError):
        return None
