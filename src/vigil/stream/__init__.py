"""Events from NATS JetStream: ``vigil consume`` workers (:mod:`vigil.stream.worker`).

Subjects (:mod:`vigil.stream.subjects`): events in on ``vigil.events.transactions``,
``vigil.events.logins`` and ``vigil.events.feedback`` (stream ``VIGIL_EVENTS``), message bodies the
same JSON as the API's; decisions out on ``vigil.decisions.<kind>`` (stream
``VIGIL_DECISIONS``), the same JSON as the API's answers; refused messages on
``vigil.events.rejected``, with the error naming the field.
"""
