"""One HTTP/1.1 connection and the server that makes them.

Parsing (:mod:`.parsing`), running handlers (:mod:`.dispatch`), the connection
itself (:mod:`.protocol`) and ``Server`` (:mod:`.server`). It builds on
:mod:`lowserve.api` and :mod:`lowserve.wire` and never imports :mod:`lowserve.ws`:
an upgrade is handed over through :class:`lowserve.api.connection.UpgradeReceiver`.
"""
