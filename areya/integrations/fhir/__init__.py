"""FHIR R4 resources built from Areya rows (served read-only under ``/fhir`` by ``areya.webapp.views.fhir``)."""
