"""Messaging between Areya's services: the Redis server and the frame stream schema."""
