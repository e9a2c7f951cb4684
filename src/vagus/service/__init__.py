"""The live service: websocket protocol, tokens and roles, fan-out, hosted sessions.

``vagus demo``, ``vagus live``, ``vagus serve`` and ``vagus review`` run a
:class:`~vagus.service.server.Service`; ``vagus relay`` is its client
(:mod:`vagus.service.relay`). The wire protocol is ``docs/protocol.md``.
"""
