#    Licensed under the Apache License, Version 2.0 (the "License"); you may
#    not use this file except in compliance with the License. You may obtain
#    a copy of the License at
#
#         http://www.apache.org/licenses/LICENSE-2.0
#
#    Unless required by applicable law or agreed to in writing, software
#    distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#    WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#    License for the specific language governing permissions and limitations
#    under the License.


"""Where an operation's time goes, timed inside the operation itself.

A part timed alone (a lookup, a read) says what it costs, not what an
operation pays for everything else. Here chosen functions of the library
are wrapped, for the length of a with-block, by timers that charge each
its exclusive time: its own, less that of the wrapped functions it calls.
The operation's whole call is wrapped too, so the parts add up to it and
nothing is left unnamed: the code between the wrapped functions is
charged to the nearest wrapped caller (the plugin's own code, vf_config's
own, os-vif's).

Timers cost time themselves; overhead() measures what one costs, so the
page can say how much of a figure they are. One thread at a time: the
benchmark's plugs and restores run in its main thread.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from collections.abc import Iterator
import contextlib
import dataclasses
import functools
import threading
import time
from typing import Any


@dataclasses.dataclass(frozen=True)
class Part:
    """A function whose exclusive time is charged to key.

    owner.name is replaced while timing: a module's function (looked up
    through the module at each call) or a class's method. A context
    manager factory (context=True) has its call, __enter__ and __exit__
    charged, not the with-block it guards.
    """

    key: str
    owner: Any
    name: str
    context: bool = False


class Clock:
    """Exclusive time and calls per key, in milliseconds."""

    def __init__(self) -> None:
        self.ms: collections.defaultdict[str, float] = (
            collections.defaultdict(float))
        self.calls = 0
        # The time wrapped callees took, one entry per open wrapped call.
        self._inner: list[float] = []
        self._thread = threading.get_ident()

    def call(self, key: str, func: Callable[..., Any], *args: Any,
             **kwargs: Any) -> Any:
        """func(*args, **kwargs), its exclusive time charged to key."""
        if threading.get_ident() != self._thread:
            raise RuntimeError("a Clock times one thread; a wrapped "
                               "function was called from another")
        self.calls += 1
        self._inner.append(0.0)
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            inner = self._inner.pop()
            self.ms[key] += elapsed - inner
            if self._inner:
                self._inner[-1] += elapsed

    def _wrap(self, part: Part, original: Callable[..., Any]
              ) -> Callable[..., Any]:
        clock = self

        if part.context:
            @functools.wraps(original)
            def factory(*args: Any, **kwargs: Any) -> _TimedContext:
                return _TimedContext(clock, part.key, clock.call(
                    part.key, original, *args, **kwargs))
            return factory

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            return clock.call(part.key, original, *args, **kwargs)
        return timed

    @contextlib.contextmanager
    def timing(self, parts: tuple[Part, ...]) -> Iterator[Clock]:
        """The parts wrapped for the block, put back after it."""
        with contextlib.ExitStack() as undo:
            for part in parts:
                original = vars(part.owner)[part.name]
                if isinstance(original, staticmethod):
                    raise TypeError(f"{part.name} is a staticmethod: time "
                                    f"its caller instead")
                setattr(part.owner, part.name, self._wrap(part, original))
                undo.callback(setattr, part.owner, part.name, original)
            yield self


class _TimedContext:
    """A context manager whose entry and exit are charged to key."""

    def __init__(self, clock: Clock, key: str, inner: Any) -> None:
        self._clock = clock
        self._key = key
        self._inner = inner

    def __enter__(self) -> Any:
        return self._clock.call(self._key, self._inner.__enter__)

    def __exit__(self, *exc_info: Any) -> Any:
        return self._clock.call(self._key, self._inner.__exit__, *exc_info)


def overhead(calls: int = 2000) -> float:
    """What one timed call adds to a call, in milliseconds.

    A no-op called through Clock.call against the same no-op called
    directly, the same number of times, one after the other.
    """
    def nothing() -> None:
        return None

    clock = Clock()
    started = time.perf_counter()
    for _ in range(calls):
        nothing()
    plain = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(calls):
        clock.call("nothing", nothing)
    timed = time.perf_counter() - started
    return max(timed - plain, 0.0) * 1000 / calls
