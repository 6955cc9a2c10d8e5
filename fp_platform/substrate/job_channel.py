"""How a one-shot job reports: through Dagster Pipes when launched by it, else stderr + stdout JSON.

The same entrypoint then runs as a Pipes subprocess, a Kubernetes pod or by hand.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Log = Callable[[str], None]
Report = Callable[[dict], None]


@contextmanager
def job_channel() -> Iterator[tuple[Log, Report]]:
    if os.environ.get("DAGSTER_PIPES_CONTEXT"):
        from dagster_pipes import open_dagster_pipes

        with open_dagster_pipes() as pipes:
            yield pipes.log.info, pipes.report_custom_message
    else:
        yield (lambda m: print(m, file=sys.stderr, flush=True)), (lambda r: print(json.dumps(r, indent=2)))
