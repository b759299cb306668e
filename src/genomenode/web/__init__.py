"""The one HTTP layer of genomenode: limits, bodies, responses, errors, servers.

Every HTTP surface (the node's Beacon, access, htsget, DRS, catalogue and
development identity provider; the network) reads its requests and writes its
answers through this package:

- :func:`.body.read_body` streams a request body with a size limit (checked against
  ``Content-Length`` before reading and again while reading) and a time limit;
  :func:`.body.read_json` turns it into JSON with limits on nesting depth and on the
  digits of integers, and refuses bytes that are not UTF-8.
- :func:`.responses.json_response` is the one way a JSON answer is written.
- :func:`.blocking.run_blocking` runs database, Zarr, crypto and CPU work in the thread
  pool, never on the event loop, and tells that work to stop
  (:func:`.blocking.check_cancelled`) when the client goes away.
- :func:`.responses.install_error_handlers` turns every error raised by a route into the
  error document of the API the path belongs to, in exactly one place.
- :func:`.server.serve` starts uvicorn for a node or a network, with the header
  timeout and header size limit of :class:`.server.ServerProtocol`.

The limits are settings (:class:`.body.HttpLimits`, ``http_*`` in
:mod:`genomenode.config`); over a limit a caller gets 413 (body), 408 (too
slow to send) or 400 (depth, digits, not UTF-8, not JSON), never a 500.

Error documents by path:

=================  =====================================================
``/api``           Beacon v2 ``beaconErrorResponse``
``/htsget``        htsget ``{"htsget": {"error": <kind>, "message": ...}}``
``/ga4gh/drs``     DRS ``{"msg": ..., "status_code": ...}``
anything else      ``{"detail": ...}``
=================  =====================================================

A 500 says only "internal error" (the cause goes to the log, without the
request's parameters); a 401 carries ``WWW-Authenticate: Bearer``; a 405 keeps
its ``Allow`` header.
"""
