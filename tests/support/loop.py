"""Does code under test let the asyncio event loop run? :class:`LoopTurns` counts the
loop's turns while a block runs: a task that only yields (``await asyncio.sleep(0)``)
and counts how often it got its turn. Code that holds the loop leaves it at 0."""

from __future__ import annotations

import asyncio


class LoopTurns:
    """``async with LoopTurns() as turns:`` counts in ``turns.count`` the turns the loop
    gave to a task of its own while the block ran (read it inside the block for a count
    so far; after the block it no longer changes)."""

    def __init__(self) -> None:
        self.count = 0
        self._stop = False
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while not self._stop:
            self.count += 1
            await asyncio.sleep(0)

    async def __aenter__(self) -> LoopTurns:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop = True
        if self._task is not None:
            await self._task
