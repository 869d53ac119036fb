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


"""Counting privileged round trips where the caller makes them.

Every entrypoint call of an oslo.privsep context, whatever its name, ends
in one remote_call of the context's client channel: one message to the
daemon and one answer. Counting those calls on the client side counts the
round trips an operation really made, without knowing which entrypoints
the library has (they change with its version).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
import contextlib
import threading
from typing import Any


class ChannelChanged(RuntimeError):
    """A daemon was restarted while its calls were being counted."""


@contextlib.contextmanager
def counting(contexts: Sequence[Any]) -> Iterator[Counter[str]]:
    """Count the calls each context's channel makes, by entrypoint name.

    The contexts' daemons must be running. A daemon restarted meanwhile
    (oslo.privsep restarts one that died) has a new channel whose calls
    would be missed: that raises ChannelChanged rather than undercount.
    """
    counts: Counter[str] = Counter()
    guard = threading.Lock()
    channels = []
    for context in contexts:
        channel = context.channel
        if channel is None:
            raise RuntimeError(f"{context!r} has no running daemon to "
                               f"count the calls of")
        channel.remote_call = _counted(channel.remote_call, counts, guard)
        channels.append((context, channel))
    try:
        yield counts
    finally:
        for _context, channel in channels:
            del channel.remote_call  # the class's method again
    for context, channel in channels:
        if context.channel is not channel:
            raise ChannelChanged(f"the daemon of {context!r} was restarted "
                                 f"while its calls were counted")


def _counted(call: Callable[..., Any], counts: Counter[str],
             guard: threading.Lock) -> Callable[..., Any]:
    def remote_call(name: str, *args: Any, **kwargs: Any) -> Any:
        with guard:
            counts[name] += 1
        return call(name, *args, **kwargs)
    return remote_call


def count(contexts: Sequence[Any],
          action: Callable[[], object]) -> dict[str, int]:
    """The round trips action made to the contexts' daemons, by name."""
    with counting(contexts) as counts:
        action()
    return dict(counts)
