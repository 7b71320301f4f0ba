"""``python -m benefits.cycle``: the cycle's commands, plus ``scheduler``.

Example:
    $ python -m benefits.cycle run --month 2025-01
    $ python -m benefits.cycle scheduler
"""

from __future__ import annotations

from benefits.cycle.cli import cycle_app, scheduler

cycle_app.command("scheduler")(scheduler)

if __name__ == "__main__":
    cycle_app(prog_name="benefits cycle")
