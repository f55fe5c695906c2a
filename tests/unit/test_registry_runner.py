"""The bulk tools' worker pool on Ctrl-C: the command stops, promptly and
without a traceback from each worker."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# A worker busy with a long task when Ctrl-C (SIGINT to the process group)
# ends the import: the task consuming results is cancelled, the pool stopped.
INTERRUPTED = textwrap.dedent(
    """
    import asyncio, contextlib, multiprocessing, os, signal, time
    from eid_service.registry_tools.pipeline import Runner

    async def main() -> None:
        runner = Runner(1, None)

        async def consume() -> None:
            async for _ in runner.map(time.sleep, [60]):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(3)  # the worker has started sleeping
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGINT)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        runner.close(failed=True)

    asyncio.run(main())
    print("stopped")
    """
)


def test_an_interrupted_pool_stops_at_once_and_quietly() -> None:
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED], capture_output=True, text=True, timeout=30
    )
    assert (done.returncode, done.stdout.strip()) == (0, "stopped"), done.stderr
    assert "KeyboardInterrupt" not in done.stderr
