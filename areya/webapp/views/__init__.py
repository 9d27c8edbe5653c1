"""Blueprints: auth, ward, alerts, patients, admin, api, ops, events."""
