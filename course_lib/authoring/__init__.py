"""Authoring: turning the course's sources into notebooks and the book (both editions)."""
