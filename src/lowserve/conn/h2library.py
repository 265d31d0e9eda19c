"""python-hyper's ``h2``, adapted to a server that bounds what a client costs.

h2 is sans-I/O and does the frames, HPACK and the state machine; this module sets
up its server side as :class:`~lowserve.conn.h2connection.Http2Connection` uses it:
a client's GOAWAY leaves the streams it opened to be answered, each setting's values
kept in a list rather than a deque (an idle connection's memory halved), HPACK
without Huffman coding, and h2's header validation off (:mod:`.h2request` checks
the fields in the one pass that reads them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import h2.config
import h2.connection
import h2.settings
import hpack

if TYPE_CHECKING:
    from ..options import ServerOptions

__all__ = ["server_connection"]


def server_connection(
    opts: ServerOptions, window: int, conn_window: int
) -> h2.connection.H2Connection:
    """h2's server side, its SETTINGS queued: *window* bytes each stream's receive window,
    *conn_window* the connection's, and *opts*' bounds on streams and header lists."""
    config = h2.config.H2Configuration(
        client_side=False,
        header_encoding=None,
        validate_outbound_headers=False,  # h2_fields checked them
        normalize_outbound_headers=False,
        validate_inbound_headers=False,  # h2request checks them, in its one pass
        normalize_inbound_headers=False,
    )
    conn = h2.connection.H2Connection(config)
    conn.state_machine = _StateMachine()
    conn.encoder = _Encoder()
    conn.remote_settings = _Settings(client=True)
    conn.local_settings = _Settings(
        client=False,
        initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: opts.http2_max_concurrent_streams,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: opts.http2_max_header_list_size,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window,
        },
    )
    # Bound decoding before the client has acknowledged the setting (h2 sets it then).
    conn.decoder.max_header_list_size = opts.http2_max_header_list_size
    conn.initiate_connection()
    conn.increment_flow_control_window(conn_window - 65535)
    return conn


class _StateMachine(h2.connection.H2ConnectionStateMachine):
    """h2's connection state machine, except that a client's GOAWAY leaves the
    connection open for the streams it already opened (h2 would refuse to send their
    answers)."""

    _transitions = {
        **h2.connection.H2ConnectionStateMachine._transitions,  # noqa: SLF001 (h2's table, extended)
        (
            h2.connection.ConnectionState.SERVER_OPEN,
            h2.connection.ConnectionInputs.RECV_GOAWAY,
        ): (None, h2.connection.ConnectionState.SERVER_OPEN),
        (
            h2.connection.ConnectionState.IDLE,
            h2.connection.ConnectionInputs.RECV_GOAWAY,
        ): (None, h2.connection.ConnectionState.IDLE),
    }


class _Values(list[int]):
    """A setting's values, the one in force first: what h2 keeps in a ``deque`` (about
    760 bytes each, 14 of them a connection), in 64 bytes."""

    def popleft(self) -> int:
        return self.pop(0)


class _Settings(h2.settings.Settings):
    """h2's settings, each setting's values in a :class:`_Values`: an idle connection's
    memory was ~21 KB, half of it these deques (tracemalloc)."""

    def __init__(self, client: bool = True, initial_values: Any = None) -> None:
        super().__init__(client, initial_values)
        self._compact()

    def __setitem__(self, key: Any, value: int) -> None:
        super().__setitem__(key, value)
        self._compact()

    def _compact(self) -> None:
        values: dict[Any, Any] = self._settings
        for key, held in values.items():
            if type(held) is not _Values:
                values[key] = _Values(held)


class _Encoder(hpack.Encoder):
    """HPACK without Huffman coding: the pure-Python Huffman coder cost about a sixth
    of a response's time; heads grow by about a quarter (the dynamic table still
    indexes repeated fields)."""

    def encode(self, headers: Any, huffman: bool = True) -> bytes:
        return super().encode(headers, huffman=False)
