"""What a handler sees: requests, responses, exceptions, body streams and writers.

This layer imports only :mod:`lowserve.wire` and :mod:`lowserve.options`. What it
needs from a connection is written down in :mod:`lowserve.api.connection`, a small
``typing.Protocol`` the connection implements; it never imports the connection.
"""
