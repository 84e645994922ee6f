"""python -m tests.demo [--port 8080]: see tests/demo/__init__.py."""

import argparse
import asyncio
import contextlib

from tests.demo import main

parser = argparse.ArgumentParser(prog="make demo", description="BiliPick against the bundled doubles")
parser.add_argument("--port", type=int, default=8080)
with contextlib.suppress(KeyboardInterrupt):
    asyncio.run(main(parser.parse_args().port))
