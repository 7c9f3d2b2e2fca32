"""Entry of a measured client process: ``python -m benchmarks._child module:function JSON``.

The function takes ``(args: dict, meter: Meter)``, may be sync or async, and may return a
dict of extra figures; the measured result is printed as one ``BENCH-RESULT {...}`` line.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import sys
from typing import Any

from ._measure import RESULT_PREFIX, Meter


def main(argv: list[str]) -> int:
    target, raw_args = argv
    module_name, _, func_name = target.partition(":")
    func = getattr(importlib.import_module(module_name), func_name)
    args: dict[str, Any] = json.loads(raw_args)
    meter = Meter()
    if inspect.iscoroutinefunction(func):
        extra = asyncio.run(func(args, meter))
    else:
        extra = func(args, meter)
    if extra:
        meter.extra.update(extra)
    print(RESULT_PREFIX + json.dumps(meter.result()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
