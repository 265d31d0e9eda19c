"""HTTP/1.1 on the wire: framing, heads, refusals, codings, header syntax, proxy headers.

The bottom layer: it imports nothing else from lowserve, and everything it holds is
plain functions and data that a connection, a response or a test can use alone.
"""
