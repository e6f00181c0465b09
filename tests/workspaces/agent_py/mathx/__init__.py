"""Small math helpers."""
