"""The benchmark handler as a module, for the lowserve command (``--workers`` runs)."""

from servers import make_handler

from lowserve import web

handler = make_handler(web)
