"""One HTTP/1.1 connection, HTTP/2 over it, and the server that makes them.

Reading requests without I/O (:mod:`.reader`), running handlers and answering
(:mod:`.responder`), the connection itself (:mod:`.protocol`), its flow control
(:mod:`.flow`), what takes it over (:mod:`.takeover`), the PROXY header
(:mod:`.proxyheader`), HTTP/2 (:mod:`.h2connection`, :mod:`.h2stream`,
:mod:`.h2request`, :mod:`.h2library`) and ``Server`` (:mod:`.server`). It builds on
:mod:`lowserve.api` and :mod:`lowserve.wire` and never imports :mod:`lowserve.ws`:
an upgrade is handed over through :class:`lowserve.api.connection.UpgradeReceiver`.
"""
