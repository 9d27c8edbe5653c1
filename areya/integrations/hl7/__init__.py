"""HL7 v2 ADT over MLLP: admissions, transfers and discharges from the hospital's patient administration system.

``mllp`` frames blocks (the ``hl7`` package's asyncio streams), ``messages`` parses an ADT message into an
:class:`~areya.integrations.hl7.messages.AdtEvent`, ``locations`` maps PV1-3 to Areya beds, ``apply`` applies an
event through the admin operations (idempotent by MSH-10), ``ack`` builds the ACK, ``service`` ties them together
and runs the listener.
"""
