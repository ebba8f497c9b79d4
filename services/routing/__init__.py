"""The routing service: which operator takes which interaction."""
