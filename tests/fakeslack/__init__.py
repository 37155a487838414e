"""Tests of connbot.fakeslack (a package so its conftest never shadows another `conftest`)."""
