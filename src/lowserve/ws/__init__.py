"""WebSockets: ``WebSocketResponse`` over websockets' sans-I/O protocol.

It builds on :mod:`lowserve.api` and takes a connection over through the
interface in :mod:`lowserve.api.connection`; it never imports :mod:`lowserve.conn`.
"""
