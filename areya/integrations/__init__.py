"""Hospital integration: HL7 v2 ADT feed in (``hl7``), FHIR R4 read API out (``areya.webapp.views.fhir``)."""
